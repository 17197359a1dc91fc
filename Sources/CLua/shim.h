// Lua 5.4 (Debian liblua5.4-dev), plus static-inline wrappers for the parts of the
// API that are macros and therefore invisible to Swift.
#ifndef KVMLUA_CLUA_SHIM_H
#define KVMLUA_CLUA_SHIM_H
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static inline void kvm_lua_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline int kvm_lua_pcall(lua_State *L, int nargs, int nresults, int msgh) {
    return lua_pcall(L, nargs, nresults, msgh);
}
static inline void kvm_lua_call(lua_State *L, int nargs, int nresults) { lua_call(L, nargs, nresults); }
static inline const char *kvm_lua_tostring(lua_State *L, int idx) { return lua_tostring(L, idx); }
static inline lua_Number kvm_lua_tonumber(lua_State *L, int idx) { return lua_tonumber(L, idx); }
static inline lua_Integer kvm_lua_tointeger(lua_State *L, int idx) { return lua_tointeger(L, idx); }
static inline void kvm_lua_newtable(lua_State *L) { lua_newtable(L); }
static inline void *kvm_lua_newuserdata(lua_State *L, size_t size) { return lua_newuserdata(L, size); }
static inline int kvm_lua_isnoneornil(lua_State *L, int idx) { return lua_isnoneornil(L, idx); }
static inline int kvm_lua_isnil(lua_State *L, int idx) { return lua_isnil(L, idx); }
static inline int kvm_lua_istable(lua_State *L, int idx) { return lua_istable(L, idx); }
static inline int kvm_lua_isfunction(lua_State *L, int idx) { return lua_isfunction(L, idx); }
static inline void kvm_lua_insert(lua_State *L, int idx) { lua_insert(L, idx); }
static inline void kvm_lua_remove(lua_State *L, int idx) { lua_remove(L, idx); }
static inline void kvm_lua_replace(lua_State *L, int idx) { lua_replace(L, idx); }
static inline int kvm_lua_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline void kvm_lua_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }
static inline int kvm_lua_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int kvm_lua_multret(void) { return LUA_MULTRET; }
static inline int kvm_lua_yield(lua_State *L, int n) { return lua_yield(L, n); }
static inline int kvm_luaL_dofile_loadonly(lua_State *L, const char *fn) { return luaL_loadfile(L, fn); }
static inline const char *kvm_luaL_typename(lua_State *L, int i) { return luaL_typename(L, i); }
static inline void kvm_luaL_getmetatable(lua_State *L, const char *n) { (void)luaL_getmetatable(L, n); }
/* lua_gc is variadic in 5.4, which Swift cannot call. */
static inline int kvm_lua_gc_stop(lua_State *L) { return lua_gc(L, LUA_GCSTOP); }
static inline int kvm_lua_gc_restart(lua_State *L) { return lua_gc(L, LUA_GCRESTART); }
static inline int kvm_lua_gc_generational(lua_State *L) { return lua_gc(L, LUA_GCGEN, 0, 0); }
static inline int kvm_lua_gc_collect(lua_State *L) { return lua_gc(L, LUA_GCCOLLECT); }
static inline int kvm_lua_gc_count_kb(lua_State *L) { return lua_gc(L, LUA_GCCOUNT); }
/* LUA_IGMARK (5.4.7+): "-" separates a version suffix from a module name in lua -l. */
static inline const char *kvm_lua_igmark(void) { return "-"; }
static inline void **kvm_lua_extraspace(lua_State *L) { return (void **)lua_getextraspace(L); }
static inline int kvm_lua_isyieldable(lua_State *L) { return lua_isyieldable(L); }
static inline lua_State *kvm_lua_tothread(lua_State *L, int idx) { return lua_tothread(L, idx); }
/* C stdio streams: Swift 6 sees glibc's `stdout` as a global var, not concurrency-safe. */
static inline FILE *kvm_stdout(void) { return stdout; }
static inline FILE *kvm_stderr(void) { return stderr; }
static inline const char *kvm_lua_copyright(void) { return LUA_COPYRIGHT; }
static inline const char *kvm_lua_release(void) { return LUA_RELEASE; }
static inline const char *kvm_lua_version_string(void) { return LUA_VERSION; }
/* lua.c's LUA_INIT_VAR and LUA_INITVARVERSION ("LUA_INIT_5_4") */
static inline const char *kvm_lua_init_var(void) { return "LUA_INIT"; }
static inline const char *kvm_lua_initvarversion(void) { return "LUA_INIT_" LUA_VERSION_MAJOR "_" LUA_VERSION_MINOR; }
static inline int kvm_lua_minstack(void) { return LUA_MINSTACK; }
static inline lua_Integer kvm_lua_maxinteger(void) { return LUA_MAXINTEGER; }
static inline lua_Integer kvm_lua_mininteger(void) { return LUA_MININTEGER; }

#endif
