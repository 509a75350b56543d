/*
 *  compat/ltdl.h -- minimal stand-in for libltdl's header (eprop-plugins)
 *
 *  NEST's module_manager.h (reached through kernel_manager.h) includes <ltdl.h> only to declare
 *  the handle type of loaded modules.  The nest-simulator wheel does not ship the header and
 *  libltdl-dev is often not installed; extension modules never call libltdl, so the opaque handle
 *  type is all they need.  nest_models/build.py puts this directory on the include path.
 */
#ifndef EPROP_COMPAT_LTDL_H
#define EPROP_COMPAT_LTDL_H
#ifndef LT__HANDLE_DECLARED
typedef struct lt__handle* lt_dlhandle;
#endif
#endif
