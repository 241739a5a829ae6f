#include "common/nib.h"
#include "test.h"

TEST_IMPL(base_strerror) {
    ASSERT_STR_EQ(nib_strerror(NIB_EBADMODEL), "invalid or corrupt model file");
    ASSERT_STR_EQ(nib_strerror(0), "success");
    ASSERT_STR_EQ(nib_strerror(-9999), "unknown error");
    return 0;
}

TEST_IMPL(base_try_calloc_overflow) {
    ASSERT(nib_try_calloc(SIZE_MAX / 2, 4) == NULL);
    int *p = nib_try_calloc(16, sizeof(int));
    ASSERT(p != NULL);
    for (int i = 0; i < 16; i++)
        ASSERT_EQ(p[i], 0);
    nib_free(p);
    return 0;
}
