// GNU readline (Debian libreadline-dev, no pkg-config file). readline.h needs stdio.h first.
#ifndef KVMLUA_CREADLINE_SHIM_H
#define KVMLUA_CREADLINE_SHIM_H
#include <stdio.h>
#include <readline/readline.h>
#include <readline/history.h>

static inline char kvm_rl_prompt_start_ignore(void) { return RL_PROMPT_START_IGNORE; }
static inline char kvm_rl_prompt_end_ignore(void) { return RL_PROMPT_END_IGNORE; }
#endif
