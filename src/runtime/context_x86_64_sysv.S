// Context switch for x86-64, System V ABI.
//
// A saved context is the stack pointer of a suspended stack whose top holds, from
// low to high: MXCSR (4 bytes) and the x87 control word (2 bytes, zero-padded to 8),
// r15, r14, r13, r12, rbx, rbp, and the return address. Those are exactly the
// callee-saved registers the ABI requires a call to preserve; everything else is
// caller-saved, so the C++ caller has already spilled it.
//
// void goro_context_switch(void** save_sp, void* load_sp)
//   Saves the current context, stores its stack pointer in *save_sp, and resumes
//   the context whose stack pointer is load_sp.
// goro_context_trampoline
//   First "return address" of a fresh context: calls r12(r13) and never returns.

        .text
        .globl  goro_context_switch
        .type   goro_context_switch, @function
        .p2align 4
goro_context_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        pushq   $0                      // the control-word slot, upper bytes zero
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    (%rsp), %rax
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        // Reloading MXCSR and the x87 control word stalls the pipeline; almost always
        // the resumed context uses the same values, so reload only when they differ.
        cmpq    (%rsp), %rax
        jne     1f
2:
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
1:
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        jmp     2b
        .cfi_endproc
        .size   goro_context_switch, .-goro_context_switch

        .globl  goro_context_trampoline
        .type   goro_context_trampoline, @function
        .p2align 4
goro_context_trampoline:
        .cfi_startproc
        .cfi_undefined rip
        xorl    %ebp, %ebp
        movq    %r13, %rdi
        callq   *%r12
        ud2
        .cfi_endproc
        .size   goro_context_trampoline, .-goro_context_trampoline

        .section .note.GNU-stack,"",@progbits
