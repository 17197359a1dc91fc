// The C side of the Lua bridge: the parts that must be real C because Lua's errors and
// yields are longjmps. Swift never calls lua_error/lua_yieldk itself: a Swift function
// returns a status to kvm_trampoline, which raises or yields after the Swift frames are gone.
#ifndef KVMLUA_LUA_RUNTIME_H
#define KVMLUA_LUA_RUNTIME_H
#include <lua.h>

/// Status codes a Swift dispatcher returns to the trampoline (>= 0 = number of results).
#define KVM_CALL_ERROR (-1)  /* the error value is on top of the stack */
#define KVM_CALL_YIELD (-2)  /* yield to the scheduler; resumed with (ok, values...) */

typedef int (*kvm_dispatch_fn)(lua_State *L);

/// Sets the one Swift dispatcher that every Swift-backed Lua function goes through.
void kvm_set_dispatcher(kvm_dispatch_fn dispatcher);

/// The lua_CFunction of every Swift-backed function. Upvalue 1 is the Swift box.
int kvm_trampoline(lua_State *L);

/// Pushes a new Swift-backed function: pops `nup` values (the box first) as upvalues.
void kvm_push_swift_closure(lua_State *L, int nup);

/// lua.c's message handler, extended for kvm.Error tables (see kvm_set_error_metatable_key).
/// With `brief` set (the REPL) a kvm.Error gets no traceback.
int kvm_msghandler(lua_State *L);
int kvm_msghandler_brief(lua_State *L);

/// Registry key (metatable name) that marks kvm.Error tables; NULL disables the special case.
void kvm_set_error_metatable_key(const char *key);

/// Appends lua.c-style "stack traceback:" text of `L1` to the string on top of `L`.
void kvm_traceback(lua_State *L, lua_State *L1, const char *msg, int level);

/// Pushes tostring(value at idx) computed in protected mode (a __tostring can fail).
/// Returns LUA_OK with the string pushed, or an error status with the error message pushed.
int kvm_tolstring_protected(lua_State *L, int idx);

// ---- SIGINT (lua.c's laction/lstop, plus a wake-up for the scheduler) ----

/// Installs the handler for the duration of a call: the first SIGINT sets a hook on the
/// main state and on the running coroutine that raises "interrupted!", writes one byte
/// to `wake_fd`, and resets SIGINT to SIG_DFL so that a second one kills the process.
void kvm_sigint_arm(lua_State *main_state, int wake_fd);
/// Back to the default disposition (lua.c does this after each call).
void kvm_sigint_disarm(void);
/// Sets the coroutine currently being resumed (NULL when none); returns the previous one.
lua_State *kvm_sigint_set_running(lua_State *co);
/// 1 if a SIGINT arrived since the last call (and clears the flag).
int kvm_sigint_take(void);
/// Removes the "interrupted!" hook where it is still pending (the scheduler turned the
/// interrupt into a `cancelled` error instead).
void kvm_sigint_clear_hooks(void);

/// Handler used while the REPL waits for input: only records the interrupt and wakes.
void kvm_sigint_arm_idle(int wake_fd);

// ---- Ending the process ----

/// Runs before the process ends through kvm_exit_now (releases the devices' keys).
void kvm_set_before_exit(void (*handler)(void));
/// Ends the process: the before-exit handler, C stdio flushed, then _exit. Skips atexit
/// handlers and the shared libraries' destructors: libtesseract pulls in libcurl, krb5 and
/// OpenSSL, whose clean-up at exit can race a thread still using them (a crash after the
/// last line of output, seen once); nothing of ours needs them.
void kvm_exit_now(int status) __attribute__((noreturn));
/// `os.exit([code [, close]])` as Lua's, ending through kvm_exit_now.
int kvm_os_exit(lua_State *L);

#endif
