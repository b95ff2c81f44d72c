/* Test-only stand-in for mscms.dll (Windows Color System), for the Wine prefix of the Windows
 * build. Qt 6.12's qwindows.dll imports WcsCreateIccProfile, which Wine 8's builtin mscms.dll
 * only stubs: the first window aborts with "Unimplemented function". The prefix loads this file
 * instead (WINEDLLOVERRIDES=mscms=n); it exports the four functions qwindows.dll imports, and
 * every one reports failure, so Qt falls back to sRGB for the screen's colour space, as it does
 * on a Windows without a display profile. Never shipped: real Windows has the real mscms.dll.
 */
#include <windows.h>

typedef HANDLE HPROFILE;

HPROFILE WINAPI OpenColorProfileW(void *profile, DWORD access, DWORD share, DWORD creation)
{
    (void)profile; (void)access; (void)share; (void)creation;
    SetLastError(ERROR_NOT_SUPPORTED);
    return NULL;
}

BOOL WINAPI CloseColorProfile(HPROFILE profile)
{
    (void)profile;
    return TRUE;
}

BOOL WINAPI GetColorProfileFromHandle(HPROFILE profile, BYTE *buffer, DWORD *size)
{
    (void)profile; (void)buffer;
    if (size != NULL)
        *size = 0;
    SetLastError(ERROR_NOT_SUPPORTED);
    return FALSE;
}

HPROFILE WINAPI WcsCreateIccProfile(HPROFILE wcs_profile, DWORD options)
{
    (void)wcs_profile; (void)options;
    SetLastError(ERROR_NOT_SUPPORTED);
    return NULL;
}
