#ifndef KVMLUA_LUA_RUNTIME_H
#define KVMLUA_LUA_RUNTIME_H
#include <lua.h>
#endif
