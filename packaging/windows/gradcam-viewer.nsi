; NSIS 3 installer around the PyInstaller one-folder bundle. Built on Linux by
; `make package-windows` (packaging/windows/build_windows.py), which passes:
;   -DVERSION=0.1.0 -DBUNDLE=<the bundle folder> -DOUTFILE=<setup.exe> -DROOT=<repository>
; Optional: -DFAST_COMPRESSION (zlib: minutes instead of LZMA's quarter hour, ~40 % larger) to
;           try out the installer's own logic.
;
; Command line: /S silent; /AllUsers (default for administrators) or /CurrentUser;
; /D=<folder> (last, unquoted) to choose the folder. Uninstaller: /S silent;
; /REMOVEUSERDATA also deletes the user's settings, logs and unsent DICOM outbox.

; A 64-bit installer: a 32-bit one would need Wine's 32-bit half (wine32) to run at all here,
; and would see the 32-bit Program Files and registry on Windows.
Target amd64-unicode
ManifestDPIAware true
!ifdef FAST_COMPRESSION
  SetCompressor zlib
!else
  SetCompressor /SOLID lzma
  SetCompressorDictSize 64
!endif

!ifndef VERSION | BUNDLE | OUTFILE | ROOT
  !error "build with packaging/windows/build_windows.py (it passes VERSION, BUNDLE, OUTFILE, ROOT)"
!endif

!define APPNAME "Grad-CAM Viewer"
!define APPEXE "gradcam-viewer.exe"
!define CLIEXE "gradcam-viewer-cli.exe"  ; the same program as a console program (explain, ...)
!define PUBLISHER "gradcam-viewer developers"
!define UNINSTKEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\gradcam-viewer"
!define PROGID "GradCamViewer.dcm"
!define URI_SCHEME "gradcam-viewer"
; Where the program keeps its own data on Windows (platformdirs, QSettings): kept on uninstall
; unless the user asks.
!define USERDATA "$LOCALAPPDATA\gradcam-viewer"
!define QSETTINGSKEY "Software\gradcam-viewer"

Name "${APPNAME}"
OutFile "${OUTFILE}"
BrandingText "${APPNAME} ${VERSION}"
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APPNAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APPNAME} installer"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "LegalCopyright" "Apache-2.0; bundled components: see THIRD_PARTY_LICENSES.md"

; Per-machine under Program Files by default, per-user (no administrator) as an option.
!define MULTIUSER_EXECUTIONLEVEL Highest
!define MULTIUSER_MUI
!define MULTIUSER_INSTALLMODE_COMMANDLINE
!define MULTIUSER_USE_PROGRAMFILES64
!define MULTIUSER_INSTALLMODE_INSTDIR "${APPNAME}"
!define MULTIUSER_INSTALLMODE_INSTDIR_REGISTRY_KEY "${UNINSTKEY}"
!define MULTIUSER_INSTALLMODE_INSTDIR_REGISTRY_VALUENAME "InstallLocation"
!define MULTIUSER_INSTALLMODE_DEFAULT_REGISTRY_KEY "${UNINSTKEY}"
!define MULTIUSER_INSTALLMODE_DEFAULT_REGISTRY_VALUENAME "InstallMode"
!include MultiUser.nsh
!include MUI2.nsh
!include LogicLib.nsh
!include FileFunc.nsh
!include x64.nsh

!define MUI_ICON "${ROOT}/packaging/windows/gradcam-viewer.ico"
!define MUI_UNICON "${ROOT}/packaging/windows/gradcam-viewer.ico"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_NODESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APPEXE}"
!define MUI_FINISHPAGE_RUN_NOTCHECKED

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_LICENSE "${ROOT}/LICENSES.md"
!insertmacro MULTIUSER_PAGE_INSTALLMODE
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_COMPONENTS
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"

Section "!${APPNAME}" SecApp
  SectionIn RO
  SetOutPath "$INSTDIR"
  ; The bundle: gradcam-viewer.exe, gradcam-viewer-cli.exe and _internal\ (Python, Qt, TensorFlow, and the licences:
  ; LICENSES.md and THIRD_PARTY_LICENSES.md with every bundled component's licence text).
  File /r "${BUNDLE}/*"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  CreateShortCut "$SMPROGRAMS\${APPNAME}.lnk" "$INSTDIR\${APPEXE}" "" "$INSTDIR\${APPEXE}" 0

  ; Add/Remove Programs (HKLM for all users, HKCU for a per-user install: SHCTX follows the mode)
  WriteRegStr SHCTX "${UNINSTKEY}" "DisplayName" "${APPNAME}"
  WriteRegStr SHCTX "${UNINSTKEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr SHCTX "${UNINSTKEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr SHCTX "${UNINSTKEY}" "DisplayIcon" "$INSTDIR\${APPEXE},0"
  WriteRegStr SHCTX "${UNINSTKEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr SHCTX "${UNINSTKEY}" "InstallMode" "$MultiUser.InstallMode"
  WriteRegStr SHCTX "${UNINSTKEY}" "UninstallString" '"$INSTDIR\uninstall.exe" /$MultiUser.InstallMode'
  WriteRegStr SHCTX "${UNINSTKEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /$MultiUser.InstallMode /S'
  WriteRegDWORD SHCTX "${UNINSTKEY}" "NoModify" 1
  WriteRegDWORD SHCTX "${UNINSTKEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD SHCTX "${UNINSTKEY}" "EstimatedSize" $0
SectionEnd

; "Open with" for .dcm: our ProgID joins the extension's OpenWithProgids list; the default
; program for .dcm (an existing DICOM viewer) stays as it is.
Section "Offer ${APPNAME} in Open with for DICOM files (.dcm)" SecDcm
  WriteRegStr SHCTX "Software\Classes\.dcm\OpenWithProgids" "${PROGID}" ""
  WriteRegStr SHCTX "Software\Classes\${PROGID}" "" "DICOM image"
  WriteRegStr SHCTX "Software\Classes\${PROGID}\DefaultIcon" "" "$INSTDIR\${APPEXE},0"
  WriteRegStr SHCTX "Software\Classes\${PROGID}\shell\open\command" "" '"$INSTDIR\${APPEXE}" "%1"'
  WriteRegStr SHCTX "Software\Classes\Applications\${APPEXE}\SupportedTypes" ".dcm" ""
  WriteRegStr SHCTX "Software\Classes\Applications\${APPEXE}" "FriendlyAppName" "${APPNAME}"
  WriteRegStr SHCTX "Software\Classes\Applications\${APPEXE}\shell\open\command" "" '"$INSTDIR\${APPEXE}" "%1"'
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'  ; SHCNE_ASSOCCHANGED
SectionEnd

; gradcam-viewer://... links (from a web worklist or another program) start the viewer with the
; whole link as its only argument: "<install>\gradcam-viewer.exe" "gradcam-viewer://...". The
; program hands it to the viewer already running, which asks the user before it retrieves the
; study the link names (a link can name nothing but a configured PACS node and one study).
Section "Open ${URI_SCHEME}:// links from a worklist" SecUri
  WriteRegStr SHCTX "Software\Classes\${URI_SCHEME}" "" "URL:${APPNAME} link"
  WriteRegStr SHCTX "Software\Classes\${URI_SCHEME}" "URL Protocol" ""
  WriteRegStr SHCTX "Software\Classes\${URI_SCHEME}\DefaultIcon" "" "$INSTDIR\${APPEXE},0"
  WriteRegStr SHCTX "Software\Classes\${URI_SCHEME}\shell\open\command" "" '"$INSTDIR\${APPEXE}" "%1"'
SectionEnd

Section /o "un.Also remove my settings, logs and unsent DICOM objects" SecUnUserData
  RMDir /r "${USERDATA}"
  DeleteRegKey HKCU "${QSETTINGSKEY}"
SectionEnd

Section "-un.${APPNAME}"
  ; Only what the installer put there; a folder the user chose that holds other files stays.
  Delete "$SMPROGRAMS\${APPNAME}.lnk"
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\${APPEXE}"
  Delete "$INSTDIR\${CLIEXE}"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"

  DeleteRegValue SHCTX "Software\Classes\.dcm\OpenWithProgids" "${PROGID}"
  DeleteRegKey /ifempty SHCTX "Software\Classes\.dcm\OpenWithProgids"
  DeleteRegKey /ifempty SHCTX "Software\Classes\.dcm"
  DeleteRegKey SHCTX "Software\Classes\${PROGID}"
  DeleteRegKey SHCTX "Software\Classes\Applications\${APPEXE}"
  ; the link handler, if this or a later installer registered it for this program
  ReadRegStr $0 SHCTX "Software\Classes\${URI_SCHEME}\shell\open\command" ""
  ${If} $0 == '"$INSTDIR\${APPEXE}" "%1"'
    DeleteRegKey SHCTX "Software\Classes\${URI_SCHEME}"
  ${EndIf}
  DeleteRegKey SHCTX "${UNINSTKEY}"
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
SectionEnd

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_OK|MB_ICONSTOP "${APPNAME} needs 64-bit Windows 10 or later."
    Abort
  ${EndIf}
  SetRegView 64
  !insertmacro MULTIUSER_INIT
FunctionEnd

Function un.onInit
  SetRegView 64
  !insertmacro MULTIUSER_UNINIT
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/REMOVEUSERDATA" $R1
  ${IfNot} ${Errors}
    SectionSetFlags ${SecUnUserData} ${SF_SELECTED}
  ${EndIf}
FunctionEnd
