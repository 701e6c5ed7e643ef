/* Tests for the generated size-class tables (src/mem/sizeclasses.h).
 *
 * The tables are data the allocator trusts without checking: a wrong
 * size_to_class entry hands out an object smaller than the request, a wrong
 * division magic maps an interior pointer to the wrong object. So the
 * properties are checked exhaustively (every request size, every offset in
 * every span) rather than by sampling, and a few values are pinned to Go
 * 1.19's runtime/sizeclasses.go so that the tables stay Go's. That the header
 * is what tools/mksizeclasses.c generates is the ctest sizeclasses_regen. */
#include "mem/sizeclasses.h"
#include "test.h"

static uint32_t span_bytes(int c) {
    return (uint32_t)class_to_allocnpages[c] << SIZE_CLASS_PAGE_SHIFT;
}

static void test_shape(void) {
    CHECK_EQ(NUM_SIZE_CLASSES, 68);
    CHECK_EQ(sizeof class_to_size / sizeof class_to_size[0], NUM_SIZE_CLASSES);
    CHECK_EQ(MAX_SMALL_SIZE, 32768);
    CHECK_EQ(SIZE_CLASS_PAGE_SHIFT, 13);
    CHECK_EQ(class_to_size[0], 0);
    CHECK_EQ(class_to_allocnpages[0], 0);
    CHECK_EQ(class_to_nelems[0], 0);
    CHECK_EQ(class_to_divmagic[0], 0);
    CHECK_EQ(class_to_size[1], 8);
    CHECK_EQ(class_to_size[NUM_SIZE_CLASSES - 1], MAX_SMALL_SIZE);
    for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
        CHECK(class_to_size[c] > class_to_size[c - 1]);
        CHECK_EQ(class_to_size[c] % 8, 0);
        /* Above SMALL_SIZE_MAX the classes must end on LARGE_SIZE_DIV
         * boundaries, or size_to_class128 could not be exact. */
        if (class_to_size[c] > SMALL_SIZE_MAX) CHECK_EQ(class_to_size[c] % LARGE_SIZE_DIV, 0);
    }
}

static void test_spans(void) {
    int max_objs = 0;
    for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
        uint32_t span = span_bytes(c), size = class_to_size[c];
        CHECK(class_to_allocnpages[c] >= 1);
        CHECK_EQ(class_to_nelems[c], span / size);
        CHECK(class_to_nelems[c] <= MAX_OBJS_PER_SPAN);
        CHECK(span - class_to_nelems[c] * size <= span / 8);
        if (class_to_nelems[c] > max_objs) max_objs = class_to_nelems[c];
    }
    CHECK_EQ(max_objs, MAX_OBJS_PER_SPAN);
    CHECK_EQ(MAX_OBJS_PER_SPAN, 1024);
}

static void test_size_to_class(void) {
    int want = 1; /* the smallest class whose size >= n, advanced as n grows */
    for (size_t n = 1; n <= MAX_SMALL_SIZE; n++) {
        while (class_to_size[want] < n) want++;
        CHECK(want < NUM_SIZE_CLASSES);
        if (size_to_class(n) != (unsigned)want) {
            fprintf(stderr, "size_to_class(%zu) = %u, want %d\n", n, size_to_class(n), want);
            CHECK(0);
        }
    }
}

static void test_divmagic(void) {
    for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
        uint32_t span = span_bytes(c), size = class_to_size[c], magic = class_to_divmagic[c];
        CHECK_EQ(magic, UINT32_MAX / size + 1);
        for (uint32_t off = 0; off < span; off++) {
            if ((uint32_t)(((uint64_t)off * magic) >> 32) != off / size) {
                fprintf(stderr, "class %d: divmagic wrong at offset %u\n", c, off);
                CHECK(0);
            }
        }
    }
}

/* Values read from Go 1.19's runtime/sizeclasses.go. */
static void test_go_values(void) {
    CHECK_EQ(class_to_size[2], 16);
    CHECK_EQ(class_to_size[3], 24);
    CHECK_EQ(class_to_nelems[3], 341);
    CHECK_EQ(class_to_size[5], 48);
    CHECK_EQ(class_to_size[32], 1024);
    CHECK_EQ(class_to_size[35], 1408);
    CHECK_EQ(class_to_allocnpages[35], 2);
    CHECK_EQ(class_to_size[50], 6912);
    CHECK_EQ(class_to_allocnpages[50], 6);
    CHECK_EQ(class_to_size[52], 9472);
    CHECK_EQ(class_to_allocnpages[52], 7);
    CHECK_EQ(class_to_size[60], 18432);
    CHECK_EQ(class_to_allocnpages[60], 9);
    CHECK_EQ(class_to_size[65], 27264);
    CHECK_EQ(class_to_allocnpages[65], 10);
    CHECK_EQ(class_to_size[67], 32768);
    CHECK_EQ(class_to_allocnpages[67], 4);
    CHECK_EQ(class_to_nelems[67], 1);
    CHECK_EQ(size_to_class(1), 1);
    CHECK_EQ(size_to_class(17), 3);
    CHECK_EQ(size_to_class(1025), 33);
    CHECK_EQ(size_to_class(32767), 67);
}

int main(void) {
    RUN(test_shape);
    RUN(test_spans);
    RUN(test_size_to_class);
    RUN(test_divmagic);
    RUN(test_go_values);
    return test_result();
}
