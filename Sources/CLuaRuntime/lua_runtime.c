#include "lua_runtime.h"
