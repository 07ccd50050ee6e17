// Move-only owner of a libbpf skeleton (bpftool gen skeleton): destroys it — closing every
// program and map fd and detaching skeleton-made links — when it goes out of scope.
//
// Usage:
//   auto skel = OpenSkeleton<parse_test_bpf>(parse_test_bpf__open, parse_test_bpf__destroy);
//   (*skel)->rodata->... / bpf_map__set_max_entries(...)   // before load
//   RETURN_IF_ERROR(skel->Load(parse_test_bpf__load));
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace skiff {

// absl::Status from a negative errno-style return (libbpf convention), with context.
inline absl::Status ErrnoStatus(int err, absl::string_view what) {
  if (err < 0) err = -err;
  std::string msg = absl::StrCat(what, ": ", std::strerror(err), " (errno ", err, ")");
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(msg);
    case EINVAL:
      return absl::InvalidArgumentError(msg);
    case E2BIG:
    case ENOSPC:
    case ENOMEM:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

template <typename T>
class Skeleton {
 public:
  using DestroyFn = void (*)(T*);
  using LoadFn = int (*)(T*);

  Skeleton() = default;
  Skeleton(T* obj, DestroyFn destroy) : obj_(obj), destroy_(destroy) {}
  Skeleton(Skeleton&& o) noexcept : obj_(std::exchange(o.obj_, nullptr)), destroy_(o.destroy_) {}
  Skeleton& operator=(Skeleton&& o) noexcept {
    if (this != &o) {
      Reset();
      obj_ = std::exchange(o.obj_, nullptr);
      destroy_ = o.destroy_;
    }
    return *this;
  }
  Skeleton(const Skeleton&) = delete;
  Skeleton& operator=(const Skeleton&) = delete;
  ~Skeleton() { Reset(); }

  absl::Status Load(LoadFn load) {
    int err = load(obj_);
    if (err) return ErrnoStatus(err, "loading BPF object");
    return absl::OkStatus();
  }

  T* get() const { return obj_; }
  T* operator->() const { return obj_; }
  explicit operator bool() const { return obj_ != nullptr; }

 private:
  void Reset() {
    if (obj_) destroy_(obj_);
    obj_ = nullptr;
  }
  T* obj_ = nullptr;
  DestroyFn destroy_ = nullptr;
};

template <typename T>
absl::StatusOr<Skeleton<T>> OpenSkeleton(T* (*open)(), void (*destroy)(T*)) {
  errno = 0;
  T* obj = open();
  if (!obj) return ErrnoStatus(errno ? errno : EINVAL, "opening BPF skeleton");
  return Skeleton<T>(obj, destroy);
}

}  // namespace skiff
