/*
 * bcryptprimitives.dll for Wine 8, which lacks it: Rust std (>= 1.78) takes
 * its random seeds (HashMap keys) from ProcessPrng, which real Windows 10+
 * exports from bcryptprimitives.dll. This shim implements it over
 * RtlGenRandom (advapi32!SystemFunction036), which Wine has. Installed only
 * into the test WINEPREFIX by scripts/test-windows.sh; never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    len -= chunk;
  }
  return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved) {
  (void)instance;
  (void)reason;
  (void)reserved;
  return TRUE;
}
