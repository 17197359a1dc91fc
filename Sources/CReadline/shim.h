// GNU readline (Debian libreadline-dev, no pkg-config file). readline.h needs stdio.h first.
#ifndef KVMLUA_CREADLINE_SHIM_H
#define KVMLUA_CREADLINE_SHIM_H
#include <stdio.h>
#include <readline/readline.h>
#include <readline/history.h>

static inline char kvm_rl_prompt_start_ignore(void) { return RL_PROMPT_START_IGNORE; }
static inline char kvm_rl_prompt_end_ignore(void) { return RL_PROMPT_END_IGNORE; }
/* readline's configuration lives in global variables, which Swift 6 will not touch
   (shared mutable state); these setters run on the Lua thread only. */
static inline void kvm_rl_configure(const char *name, rl_completion_func_t *completion,
                                    const char *word_breaks) {
    rl_readline_name = name;
    rl_catch_signals = 0;
    rl_attempted_completion_function = completion;
    rl_completer_word_break_characters = word_breaks;
}
/* Called at each completion: no file-name fallback, no space after a completed word. */
static inline void kvm_rl_completion_settings(void) {
    rl_attempted_completion_over = 1;
    rl_completion_append_character = 0;
}
/* readline() clears its end-of-input flag for each line, the callback interface does not. */
static inline void kvm_rl_clear_eof(void) { rl_eof_found = 0; }
#endif
