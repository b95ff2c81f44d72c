/* Test-only stand-in for Windows' system icuuc.dll, for the Wine prefix of the Windows build.
 *
 * Qt 6.10+ (PySide6) links Qt6Core.dll against the ICU that Windows 10 1903+ ships in system32;
 * Wine 8 has no icuuc.dll, so Qt6Core.dll would not load at all. Qt uses these functions only
 * for text codecs beyond its built-in UTF/Latin-1 ones: every converter here fails to open
 * (U_UNSUPPORTED_ERROR), which Qt treats as "encoding not available". Never shipped: the real
 * Windows has the real ICU. Types are reduced to pointers and ints (same x64 calling convention).
 */
#include <stddef.h>
#include <stdint.h>

#define U_UNSUPPORTED_ERROR 16

static void fail(int32_t *err)
{
    if (err != NULL && *err <= 0)
        *err = U_UNSUPPORTED_ERROR;
}

void *ucnv_open(const char *name, int32_t *err) { (void)name; fail(err); return NULL; }
void ucnv_close(void *cnv) { (void)cnv; }
void ucnv_reset(void *cnv) { (void)cnv; }
int8_t ucnv_getMaxCharSize(const void *cnv) { (void)cnv; return 1; }
const char *ucnv_getName(const void *cnv, int32_t *err) { (void)cnv; fail(err); return NULL; }
int32_t ucnv_countAvailable(void) { return 0; }
const char *ucnv_getAvailableName(int32_t n) { (void)n; return NULL; }

const char *ucnv_getStandardName(const char *name, const char *standard, int32_t *err)
{
    (void)name; (void)standard; fail(err); return NULL;
}

void ucnv_getToUCallBack(const void *cnv, void **action, const void **context)
{
    (void)cnv;
    if (action) *action = NULL;
    if (context) *context = NULL;
}

void ucnv_getFromUCallBack(const void *cnv, void **action, const void **context)
{
    ucnv_getToUCallBack(cnv, action, context);
}

void ucnv_setToUCallBack(void *cnv, void *action, const void *context, void **old_action,
                         const void **old_context, int32_t *err)
{
    (void)cnv; (void)action; (void)context;
    ucnv_getToUCallBack(NULL, old_action, old_context);
    fail(err);
}

void ucnv_setFromUCallBack(void *cnv, void *action, const void *context, void **old_action,
                           const void **old_context, int32_t *err)
{
    ucnv_setToUCallBack(cnv, action, context, old_action, old_context, err);
}

void ucnv_toUnicode(void *cnv, void **target, const void *target_limit, const char **source,
                    const char *source_limit, int32_t *offsets, int8_t flush, int32_t *err)
{
    (void)cnv; (void)target; (void)target_limit; (void)source; (void)source_limit;
    (void)offsets; (void)flush; fail(err);
}

void ucnv_fromUnicode(void *cnv, char **target, const char *target_limit, const void **source,
                      const void *source_limit, int32_t *offsets, int8_t flush, int32_t *err)
{
    (void)cnv; (void)target; (void)target_limit; (void)source; (void)source_limit;
    (void)offsets; (void)flush; fail(err);
}

int32_t ucnv_toUCountPending(const void *cnv, int32_t *err) { (void)cnv; fail(err); return 0; }
int32_t ucnv_fromUCountPending(const void *cnv, int32_t *err) { (void)cnv; fail(err); return 0; }

void ucnv_cbToUWriteUChars(void *args, const void *source, int32_t length, int32_t offset,
                           int32_t *err)
{
    (void)args; (void)source; (void)length; (void)offset; fail(err);
}

void ucnv_cbFromUWriteUChars(void *args, const void **source, const void *source_limit,
                             int32_t offset, int32_t *err)
{
    (void)args; (void)source; (void)source_limit; (void)offset; fail(err);
}

void UCNV_TO_U_CALLBACK_SUBSTITUTE(const void *context, void *args, const char *units,
                                   int32_t length, int32_t reason, int32_t *err)
{
    (void)context; (void)args; (void)units; (void)length; (void)reason; fail(err);
}

void UCNV_FROM_U_CALLBACK_SUBSTITUTE(const void *context, void *args, const void *units,
                                     int32_t length, int32_t code_point, int32_t reason,
                                     int32_t *err)
{
    (void)context; (void)args; (void)units; (void)length; (void)code_point; (void)reason;
    fail(err);
}
