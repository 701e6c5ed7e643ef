/* A library test_gc loads at run time (dlopen) and unloads (dlclose): its
 * globals hold the only pointers to GC objects while it is loaded. It does
 * not link gort; the test stores into these slots with GORT_STORE through
 * the addresses it gets from dlsym. */
void *gcdl_bss_slots[8];           /* .bss */
void *gcdl_data_slot = (void *)16; /* .data: initialized, not a heap address */
static void *gcdl_static_slot;     /* .bss, not exported */

void **gcdl_static_slot_addr(void) {
    return &gcdl_static_slot;
}
