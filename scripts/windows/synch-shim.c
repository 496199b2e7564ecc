/* Empty body of the api-ms-win-core-synch-l1-2-0.dll forwarder (see its .def). */
#include <windows.h>

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved) {
  (void)instance;
  (void)reason;
  (void)reserved;
  return TRUE;
}
