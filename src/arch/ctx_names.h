/* Internal names of the context-switch routines, shared by arch.h and the
 * assembler source (which cpp also reads): the symbols carry the gort__
 * prefix (docs/HACKING.md, "Names"). */
#ifndef GORT_ARCH_CTX_NAMES_H
#define GORT_ARCH_CTX_NAMES_H

#define arch_ctx_make        gort__arch_ctx_make
#define arch_ctx_resume_hook gort__arch_ctx_resume_hook
#define arch_ctx_return_trap gort__arch_ctx_return_trap
#define arch_ctx_switch      gort__arch_ctx_switch
#define arch_ctx_switch_arg  gort__arch_ctx_switch_arg
#define arch_ctx_switch_hook gort__arch_ctx_switch_hook

#endif
