#include "lua_runtime.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>

static kvm_dispatch_fn kvm_dispatcher = NULL;
static const char *kvm_error_key = NULL;

void kvm_set_dispatcher(kvm_dispatch_fn dispatcher) { kvm_dispatcher = dispatcher; }
void kvm_set_error_metatable_key(const char *key) { kvm_error_key = key; }

/* Continuation after a scheduler yield: the scheduler resumes with (ok, values...) where
   ok=false means the next value is the error to raise. `ctx` is the stack top at the yield. */
static int kvm_continue(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    int base = (int)ctx;
    if (lua_gettop(L) <= base) return 0;
    if (!lua_toboolean(L, base + 1)) {
        lua_pushvalue(L, base + 2);
        return lua_error(L);
    }
    return lua_gettop(L) - (base + 1);
}

int kvm_trampoline(lua_State *L) {
    if (kvm_dispatcher == NULL) return luaL_error(L, "kvm: Swift bridge not initialised");
    int r = kvm_dispatcher(L);
    if (r >= 0) return r;
    if (r == KVM_CALL_YIELD) {
        lua_KContext top = (lua_KContext)lua_gettop(L);
        return lua_yieldk(L, 0, top, kvm_continue);
    }
    return lua_error(L);
}

void kvm_push_swift_closure(lua_State *L, int nup) { lua_pushcclosure(L, kvm_trampoline, nup); }

static int is_kvm_error(lua_State *L, int idx) {
    if (kvm_error_key == NULL || !lua_istable(L, idx)) return 0;
    if (!lua_getmetatable(L, idx)) return 0;
    luaL_getmetatable(L, kvm_error_key);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

static int msghandler(lua_State *L, int brief) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (is_kvm_error(L, 1)) {
            /* "<where>kvm: ...": the Lua position of the call, then the one-line message. */
            lua_getfield(L, 1, "where");
            const char *where = lua_tostring(L, -1);
            if (!luaL_callmeta(L, 1, "__tostring") || lua_type(L, -1) != LUA_TSTRING) {
                lua_pushliteral(L, "kvm: error");
            }
            msg = lua_pushfstring(L, "%s%s", where ? where : "", lua_tostring(L, -1));
            if (brief) return 1;
        } else if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
            return 1;
        } else {
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
        }
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int kvm_msghandler(lua_State *L) { return msghandler(L, 0); }
int kvm_msghandler_brief(lua_State *L) { return msghandler(L, 1); }

void kvm_traceback(lua_State *L, lua_State *L1, const char *msg, int level) {
    luaL_traceback(L, L1, msg, level);
}

static int tolstring_function(lua_State *L) {
    luaL_tolstring(L, 1, NULL);
    return 1;
}

int kvm_tolstring_protected(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    if (!lua_checkstack(L, 4)) return LUA_ERRMEM;
    lua_pushcfunction(L, tolstring_function);
    lua_pushvalue(L, idx);
    return lua_pcall(L, 1, 1, 0);
}

/* ---- SIGINT ---- */

static lua_State *volatile sig_main = NULL;
static lua_State *volatile sig_running = NULL;
static volatile sig_atomic_t sig_flag = 0;
static volatile int sig_wake_fd = -1;

static void lstop(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    if (L == sig_main) {
        /* Delivered to the main chunk as "interrupted!", as lua.c does: nothing else to cancel. */
        sig_flag = 0;
        if (sig_running != NULL && lua_gethook(sig_running) == lstop) lua_sethook(sig_running, NULL, 0, 0);
    }
    /* In a task the flag stays set: the scheduler then cancels the rest (and clears hooks). */
    luaL_error(L, "interrupted!");
}

static void set_handler(void (*handler)(int)) {
    struct sigaction sa;
    sa.sa_handler = handler;
    sa.sa_flags = 0; /* no SA_RESTART: poll() and read() return EINTR, as in lua.c */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

static void wake(void) {
    int fd = sig_wake_fd;
    if (fd >= 0) {
        int saved = errno;
        const unsigned long long one = 1; /* eventfd needs 8 bytes; a pipe takes them too */
        ssize_t n = write(fd, &one, sizeof one);
        (void)n;
        errno = saved;
    }
}

static void laction(int sig) {
    int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    set_handler(SIG_DFL); /* if another SIGINT happens, terminate the process */
    sig_flag = 1;
    if (sig_main != NULL) lua_sethook(sig_main, lstop, flag, 1);
    if (sig_running != NULL) lua_sethook(sig_running, lstop, flag, 1);
    wake();
    (void)sig;
}

static void idle_action(int sig) {
    sig_flag = 1;
    wake();
    (void)sig;
}

void kvm_sigint_arm(lua_State *main_state, int wake_fd) {
    sig_main = main_state;
    sig_wake_fd = wake_fd;
    sig_flag = 0;
    set_handler(laction);
}

void kvm_sigint_arm_idle(int wake_fd) {
    sig_wake_fd = wake_fd;
    sig_flag = 0;
    set_handler(idle_action);
}

void kvm_sigint_disarm(void) { set_handler(SIG_DFL); }

lua_State *kvm_sigint_set_running(lua_State *co) {
    lua_State *previous = sig_running;
    sig_running = co;
    return previous;
}

int kvm_sigint_take(void) {
    int f = sig_flag;
    sig_flag = 0;
    return f;
}

void kvm_sigint_clear_hooks(void) {
    if (sig_main != NULL && lua_gethook(sig_main) == lstop) lua_sethook(sig_main, NULL, 0, 0);
    if (sig_running != NULL && lua_gethook(sig_running) == lstop) lua_sethook(sig_running, NULL, 0, 0);
}

// ---- Ending the process ----

static void (*before_exit)(void) = NULL;

void kvm_set_before_exit(void (*handler)(void)) { before_exit = handler; }

void kvm_exit_now(int status) {
    if (before_exit) {
        void (*handler)(void) = before_exit;
        before_exit = NULL;
        handler();
    }
    fflush(NULL);
    _exit(status);
}

int kvm_os_exit(lua_State *L) {
    int status;
    if (lua_isboolean(L, 1))
        status = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
    else
        status = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
    if (lua_toboolean(L, 2)) lua_close(L);
    kvm_exit_now(status);
}
