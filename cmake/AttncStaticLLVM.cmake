# ATTNC_STATIC_LLVM (included by the top-level CMakeLists.txt after
# find_package(MLIR)): sets ATTNC_MLIR_LIBS, what the MLIR parts of attnc
# (lib/Dialect, lib/Target) link.
#
#   OFF (default): the shared libMLIR.so and libLLVM.so, as Debian ships them.
#   ON: MLIR's and LLVM's component archives (libMLIR*.a, libLLVM*.a), with
#       zlib and zstd linked statically too, so that libattnrt.so (and the
#       attnc executable) need no LLVM, MLIR, zlib or zstd at run time: the
#       Python wheel's build (pyproject.toml, docs/runtime.md "Packaging").
#
# Debian's LLVM is built with LLVM_LINK_LLVM_DYLIB, so its exported MLIR (and
# a few LLVM) archive targets name the shared `LLVM` in their link
# interfaces; ON rewrites that item to the LLVM component archives, and the
# shared zlib and zstd of LLVMSupport's interface to their archives.
if(NOT ATTNC_STATIC_LLVM)
  set(ATTNC_MLIR_LIBS MLIR LLVM)
  return()
endif()

# Every MLIR library of these kinds (a linker takes only the archive members
# something references, so unused ones cost link time, not size): new uses of
# MLIR in attnc need no change here.
get_property(_dialects GLOBAL PROPERTY MLIR_DIALECT_LIBS)
get_property(_conversions GLOBAL PROPERTY MLIR_CONVERSION_LIBS)
get_property(_extensions GLOBAL PROPERTY MLIR_EXTENSION_LIBS)
get_property(_translations GLOBAL PROPERTY MLIR_TRANSLATION_LIBS)
set(_mlir_libs)
foreach(lib IN LISTS _dialects _conversions _extensions _translations
        ITEMS MLIRIR MLIRSupport MLIRParser MLIRAsmParser MLIRBytecodeReader MLIRBytecodeWriter MLIRPass
              MLIRTransforms MLIRTransformUtils MLIRRewrite MLIRAnalysis MLIRDialect MLIRDialectUtils
              MLIROptLib MLIRRegisterAllDialects MLIRRegisterAllPasses MLIRRegisterAllExtensions)
  if(lib MATCHES "Test" OR NOT TARGET ${lib})
    continue()
  endif()
  get_target_property(_type ${lib} TYPE)
  if(_type STREQUAL "STATIC_LIBRARY")
    list(APPEND _mlir_libs ${lib})
  endif()
endforeach()
list(REMOVE_DUPLICATES _mlir_libs)

# The LLVM component archives that stand for libLLVM.so: all of them but
# those needing a shared library of their own (curl, libedit, libxml2,
# libffi) and tools' internals.
set(_llvm_libs)
foreach(lib IN LISTS LLVM_AVAILABLE_LIBS)
  if(NOT lib MATCHES "^LLVM." OR lib MATCHES "^LLVM(BOLT|Exegesis|Debuginfod|LineEditor|WindowsManifest|Interpreter|OptDriver)"
     OR NOT TARGET ${lib})
    continue()
  endif()
  get_target_property(_type ${lib} TYPE)
  if(_type STREQUAL "STATIC_LIBRARY")
    list(APPEND _llvm_libs ${lib})
  endif()
endforeach()

# zlib and zstd as archives (libz.a: zlib1g-dev, libzstd.a: libzstd-dev).
find_library(ATTNC_ZLIB_STATIC NAMES libz.a)
find_library(ATTNC_ZSTD_STATIC NAMES libzstd.a)
if(NOT ATTNC_ZLIB_STATIC OR NOT ATTNC_ZSTD_STATIC)
  message(FATAL_ERROR "ATTNC_STATIC_LLVM needs libz.a and libzstd.a (apt-get install zlib1g-dev libzstd-dev, "
                      "or scripts/setup.sh); found: '${ATTNC_ZLIB_STATIC}', '${ATTNC_ZSTD_STATIC}'")
endif()

# Every archive target, also those only reached through others' interfaces.
foreach(lib IN LISTS MLIR_EXPORTED_TARGETS LLVM_AVAILABLE_LIBS)
  if(NOT TARGET ${lib})
    continue()
  endif()
  get_target_property(_type ${lib} TYPE)
  get_target_property(_deps ${lib} INTERFACE_LINK_LIBRARIES)
  if(NOT _type STREQUAL "STATIC_LIBRARY" OR NOT _deps)
    continue()
  endif()
  set(_new)
  foreach(dep IN LISTS _deps)
    if(dep STREQUAL "LLVM" OR dep STREQUAL "$<LINK_ONLY:LLVM>")
      list(APPEND _new ${_llvm_libs})
    elseif(dep STREQUAL "ZLIB::ZLIB")
      list(APPEND _new ${ATTNC_ZLIB_STATIC})
    elseif(dep STREQUAL "zstd::libzstd_shared")
      list(APPEND _new ${ATTNC_ZSTD_STATIC})
    elseif(dep MATCHES "libz3\\.so" OR dep MATCHES "^Polly" OR dep MATCHES "FFI::ffi")
      # LLVMSupport's Z3 solver, LLVMExtensions' Polly (whose archives Debian
      # does not ship) and LLVMInterpreter's libffi, which nothing in attnc
      # references (-z defs on libattnrt.so would say otherwise).
    else()
      list(APPEND _new ${dep})
    endif()
  endforeach()
  list(REMOVE_ITEM _new ${lib})
  set_target_properties(${lib} PROPERTIES INTERFACE_LINK_LIBRARIES "${_new}")
endforeach()

set(ATTNC_MLIR_LIBS ${_mlir_libs})
list(LENGTH _mlir_libs _n_mlir)
list(LENGTH _llvm_libs _n_llvm)
message(STATUS "ATTNC_STATIC_LLVM: linking ${_n_mlir} MLIR and ${_n_llvm} LLVM archives, ${ATTNC_ZLIB_STATIC}, ${ATTNC_ZSTD_STATIC}")
