# skiff_bpf_object(<name> <source.bpf.c>)
#
# Compiles one BPF program with clang's BPF target (-g -O2: BTF kept, CO-RE relocatable),
# generates its libbpf skeleton with `bpftool gen skeleton`, and defines an INTERFACE
# library `skiff_bpf_<name>` that C++ targets link to get `<name>.skel.h` (struct <name>_bpf).
# Every BPF program in the tree goes through this one function; adding a program is adding
# a file (bpf/CMakeLists.txt and tests/bpf/progs/CMakeLists.txt glob *.bpf.c).
#
# BPF code includes the kernel's UAPI headers (linux-libc-dev) rather than a vmlinux.h: the
# packet programs read only packet bytes and maps, never kernel structs, so they need no
# vmlinux.h; see docs/development.md.
execute_process(COMMAND uname -m OUTPUT_VARIABLE SKIFF_UNAME_M OUTPUT_STRIP_TRAILING_WHITESPACE)
string(REPLACE "x86_64" "x86" SKIFF_BPF_ARCH "${SKIFF_UNAME_M}")
string(REPLACE "aarch64" "arm64" SKIFF_BPF_ARCH "${SKIFF_BPF_ARCH}")

set(SKIFF_BPF_CFLAGS
    -g -O2 -target bpf -D__TARGET_ARCH_${SKIFF_BPF_ARCH}
    -Wall -Wno-unused-function -Wno-compare-distinct-pointer-types -Werror
    -I${CMAKE_SOURCE_DIR} -I${CMAKE_SOURCE_DIR}/bpf
    -I/usr/include/${SKIFF_UNAME_M}-linux-gnu)

function(skiff_bpf_object name src)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel_dir ${CMAKE_BINARY_DIR}/skel)
  set(skel ${skel_dir}/${name}.skel.h)
  file(GLOB_RECURSE bpf_headers CONFIGURE_DEPENDS
       ${CMAKE_SOURCE_DIR}/bpf/lib/*.h ${CMAKE_SOURCE_DIR}/maps/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CLANG_BPF} ${SKIFF_BPF_CFLAGS} -c ${src} -o ${obj}
    DEPENDS ${src} ${bpf_headers}
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${skel_dir}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(skiff_bpf_${name}_gen DEPENDS ${skel})
  add_library(skiff_bpf_${name} INTERFACE)
  add_dependencies(skiff_bpf_${name} skiff_bpf_${name}_gen)
  target_include_directories(skiff_bpf_${name} INTERFACE ${skel_dir})
  target_link_libraries(skiff_bpf_${name} INTERFACE PkgConfig::LIBBPF PkgConfig::LIBELF
                        PkgConfig::ZLIB_PC skiff_maps)
endfunction()

# Globs every *.bpf.c in the calling directory and builds each one.
function(skiff_bpf_objects_in_dir)
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.bpf.c)
  foreach(src ${srcs})
    get_filename_component(fname ${src} NAME)
    string(REPLACE ".bpf.c" "" name ${fname})
    skiff_bpf_object(${name} ${src})
  endforeach()
endfunction()
