// libxkbcommon (Debian libxkbcommon0 / libxkbcommon-dev) with Debian's xkb-data and Compose
// files (libx11-data): the keyboard layouts of every Linux desktop, for `dev:type` (the reverse
// table character → key) and the simulator's host (key → character, dead keys composed).
//
// The library is loaded on first use (dlopen), not linked, like COpenSSL: only a script that
// names an XKB layout pays for it, and kvmlua still starts and types the built-in layouts when
// it is not installed. Swift calls the kvm_ wrappers below; each resolves its symbol once. When
// the library cannot be loaded they return the failure value of the real function (0 or NULL)
// and kvm_xkb_load_error() says why.
#ifndef KVMLUA_CXKBCOMMON_SHIM_H
#define KVMLUA_CXKBCOMMON_SHIM_H
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <xkbcommon/xkbcommon.h>
#include <xkbcommon/xkbcommon-compose.h>

static inline void *kvm_xkb_library(void) {
    static void *library;
    void *handle = __atomic_load_n(&library, __ATOMIC_ACQUIRE);
    // KVMLUA_NO_XKBCOMMON=1 behaves as if the library were not installed (tests of the fallback).
    if (handle == NULL && getenv("KVMLUA_NO_XKBCOMMON") == NULL) {
        // libxkbcommon.so.0 is Debian's libxkbcommon0; the unversioned name is the -dev symlink.
        handle = dlopen("libxkbcommon.so.0", RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) handle = dlopen("libxkbcommon.so", RTLD_NOW | RTLD_LOCAL);
        if (handle != NULL) __atomic_store_n(&library, handle, __ATOMIC_RELEASE);
    }
    return handle;
}

/// NULL when libxkbcommon is loaded, else a sentence for an error message.
static inline const char *kvm_xkb_load_error(void) {
    return kvm_xkb_library() != NULL ? NULL
        : "cannot load libxkbcommon.so.0 (install the Debian packages libxkbcommon0 and xkb-data)";
}

/// The function `name` of libxkbcommon, resolved once into `slot`; NULL when it cannot be loaded.
static inline void *kvm_xkb_resolve(void **slot, const char *name) {
    void *function = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (function == NULL) {
        void *library = kvm_xkb_library();
        if (library == NULL) return NULL;
        function = dlsym(library, name);
        if (function != NULL) __atomic_store_n(slot, function, __ATOMIC_RELEASE);
    }
    return function;
}

#define KVM_XKB_FUNCTION(ret, name, params, args, failure)                      \
    static inline ret kvm_##name params {                                        \
        typedef ret (*function_type) params;                                     \
        static void *slot;                                                       \
        function_type f = (function_type)kvm_xkb_resolve(&slot, #name);          \
        if (f == NULL) return failure;                                           \
        return f args;                                                           \
    }

#define KVM_XKB_VOID_FUNCTION(name, params, args)                               \
    static inline void kvm_##name params {                                       \
        typedef void (*function_type) params;                                    \
        static void *slot;                                                       \
        function_type f = (function_type)kvm_xkb_resolve(&slot, #name);          \
        if (f != NULL) f args;                                                   \
    }

KVM_XKB_FUNCTION(struct xkb_context *, xkb_context_new, (enum xkb_context_flags flags), (flags), NULL)
KVM_XKB_VOID_FUNCTION(xkb_context_set_log_level, (struct xkb_context *context, enum xkb_log_level level), (context, level))
KVM_XKB_VOID_FUNCTION(xkb_context_unref, (struct xkb_context *context), (context))
KVM_XKB_FUNCTION(struct xkb_keymap *, xkb_keymap_new_from_names,
    (struct xkb_context *context, const struct xkb_rule_names *names, enum xkb_keymap_compile_flags flags),
    (context, names, flags), NULL)
KVM_XKB_VOID_FUNCTION(xkb_keymap_unref, (struct xkb_keymap *keymap), (keymap))
KVM_XKB_FUNCTION(xkb_level_index_t, xkb_keymap_num_levels_for_key,
    (struct xkb_keymap *keymap, xkb_keycode_t key, xkb_layout_index_t layout), (keymap, key, layout), 0)
KVM_XKB_FUNCTION(int, xkb_keymap_key_get_syms_by_level,
    (struct xkb_keymap *keymap, xkb_keycode_t key, xkb_layout_index_t layout, xkb_level_index_t level,
     const xkb_keysym_t **syms_out),
    (keymap, key, layout, level, syms_out), 0)
KVM_XKB_FUNCTION(size_t, xkb_keymap_key_get_mods_for_level,
    (struct xkb_keymap *keymap, xkb_keycode_t key, xkb_layout_index_t layout, xkb_level_index_t level,
     xkb_mod_mask_t *masks_out, size_t masks_size),
    (keymap, key, layout, level, masks_out, masks_size), 0)
KVM_XKB_FUNCTION(struct xkb_state *, xkb_state_new, (struct xkb_keymap *keymap), (keymap), NULL)
KVM_XKB_VOID_FUNCTION(xkb_state_unref, (struct xkb_state *state), (state))
KVM_XKB_FUNCTION(enum xkb_state_component, xkb_state_update_key,
    (struct xkb_state *state, xkb_keycode_t key, enum xkb_key_direction direction), (state, key, direction), 0)
KVM_XKB_FUNCTION(xkb_keysym_t, xkb_state_key_get_one_sym, (struct xkb_state *state, xkb_keycode_t key),
    (state, key), 0)
KVM_XKB_FUNCTION(xkb_mod_mask_t, xkb_state_serialize_mods,
    (struct xkb_state *state, enum xkb_state_component components), (state, components), 0)
KVM_XKB_FUNCTION(int, xkb_state_led_name_is_active, (struct xkb_state *state, const char *name), (state, name), -1)
KVM_XKB_FUNCTION(uint32_t, xkb_keysym_to_utf32, (xkb_keysym_t keysym), (keysym), 0)
KVM_XKB_FUNCTION(int, xkb_keysym_get_name, (xkb_keysym_t keysym, char *buffer, size_t size),
    (keysym, buffer, size), -1)
KVM_XKB_FUNCTION(struct xkb_compose_table *, xkb_compose_table_new_from_file,
    (struct xkb_context *context, FILE *file, const char *locale, enum xkb_compose_format format,
     enum xkb_compose_compile_flags flags),
    (context, file, locale, format, flags), NULL)
KVM_XKB_VOID_FUNCTION(xkb_compose_table_unref, (struct xkb_compose_table *table), (table))
KVM_XKB_FUNCTION(struct xkb_compose_state *, xkb_compose_state_new,
    (struct xkb_compose_table *table, enum xkb_compose_state_flags flags), (table, flags), NULL)
KVM_XKB_VOID_FUNCTION(xkb_compose_state_unref, (struct xkb_compose_state *state), (state))
KVM_XKB_VOID_FUNCTION(xkb_compose_state_reset, (struct xkb_compose_state *state), (state))
KVM_XKB_FUNCTION(enum xkb_compose_feed_result, xkb_compose_state_feed,
    (struct xkb_compose_state *state, xkb_keysym_t keysym), (state, keysym), XKB_COMPOSE_FEED_IGNORED)
KVM_XKB_FUNCTION(enum xkb_compose_status, xkb_compose_state_get_status, (struct xkb_compose_state *state),
    (state), XKB_COMPOSE_NOTHING)
KVM_XKB_FUNCTION(int, xkb_compose_state_get_utf8, (struct xkb_compose_state *state, char *buffer, size_t size),
    (state, buffer, size), 0)

/// A context that reads Debian's xkb-data, ignores the XKB_DEFAULT_* variables (the layout is the
/// one the script names) and keeps quiet: an unknown layout is our error message, not
/// libxkbcommon's log on stderr.
static inline struct xkb_context *kvm_xkb_quiet_context(void) {
    struct xkb_context *context = kvm_xkb_context_new(XKB_CONTEXT_NO_ENVIRONMENT_NAMES);
    if (context != NULL) kvm_xkb_context_set_log_level(context, XKB_LOG_LEVEL_CRITICAL);
    return context;
}

/// Debian's Compose file for UTF-8 locales (libx11-data), read directly rather than through the
/// process locale, XCOMPOSEFILE or ~/.XCompose: the table must not depend on who runs kvmlua.
/// NULL when the file or the library is missing.
static inline struct xkb_compose_table *kvm_xkb_compose_table_utf8(struct xkb_context *context) {
    FILE *file = fopen("/usr/share/X11/locale/en_US.UTF-8/Compose", "r");
    if (file == NULL) return NULL;
    struct xkb_compose_table *table = kvm_xkb_compose_table_new_from_file(
        context, file, "en_US.UTF-8", XKB_COMPOSE_FORMAT_TEXT_V1, XKB_COMPOSE_COMPILE_NO_FLAGS);
    fclose(file);
    return table;
}

#endif
