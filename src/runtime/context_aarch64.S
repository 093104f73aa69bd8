// Context switch for aarch64 (AAPCS64).
//
// A saved context is the stack pointer of a suspended stack whose top 176 bytes
// hold x19..x28, x29 (frame pointer), x30 (link register = resume address),
// d8..d15 (the callee-saved low halves of v8..v15) and FPCR. Those are exactly the
// registers AAPCS64 requires a call to preserve.
//
// void goro_context_switch(void** save_sp, void* load_sp)
// goro_context_trampoline: first resume address of a fresh context; calls x19(x20).

        .text
        .globl  goro_context_switch
        .type   goro_context_switch, %function
        .p2align 4
goro_context_switch:
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]
        mov     x9, sp
        str     x9, [x0]
        mov     sp, x1
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldr     x9, [sp, #160]
        msr     fpcr, x9
        add     sp, sp, #176
        ret
        .size   goro_context_switch, .-goro_context_switch

        .globl  goro_context_trampoline
        .type   goro_context_trampoline, %function
        .p2align 4
goro_context_trampoline:
        mov     x29, #0
        mov     x0, x20
        blr     x19
        brk     #0
        .size   goro_context_trampoline, .-goro_context_trampoline

        .section .note.GNU-stack,"",%progbits
