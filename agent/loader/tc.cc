#include "agent/loader/tc.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/loader/skeleton.h"

namespace skiff::loader {
namespace {

bpf_tc_attach_point AttachPoint(TcDirection dir) {
  return dir == TcDirection::kIngress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
}

// The hook and filter identity Skiff owns on an interface: clsact, our handle and priority.
struct SkiffFilter {
  bpf_tc_hook hook;
  bpf_tc_opts opts;
  SkiffFilter(int ifindex, TcDirection dir) {
    std::memset(&hook, 0, sizeof(hook));
    hook.sz = sizeof(hook);
    hook.ifindex = ifindex;
    hook.attach_point = AttachPoint(dir);
    std::memset(&opts, 0, sizeof(opts));
    opts.sz = sizeof(opts);
    opts.handle = kSkiffTcHandle;
    opts.priority = kSkiffTcPriority;
  }
};

}  // namespace

const char* TcDirectionName(TcDirection dir) {
  return dir == TcDirection::kIngress ? "tc-ingress" : "tc-egress";
}

absl::Status TcAttach(int ifindex, TcDirection dir, int prog_fd) {
  SkiffFilter f(ifindex, dir);
  int err = bpf_tc_hook_create(&f.hook);
  if (err && err != -EEXIST)
    return ErrnoStatus(err, absl::StrCat("creating clsact on ifindex ", ifindex));
  f.opts.prog_fd = prog_fd;
  f.opts.flags = BPF_TC_F_REPLACE;
  err = bpf_tc_attach(&f.hook, &f.opts);
  if (err)
    return ErrnoStatus(err,
                       absl::StrCat("attaching ", TcDirectionName(dir), " on ifindex ", ifindex));
  return absl::OkStatus();
}

absl::Status TcDetach(int ifindex, TcDirection dir) {
  SkiffFilter f(ifindex, dir);
  int err = bpf_tc_detach(&f.hook, &f.opts);
  if (err && err != -ENOENT && err != -EINVAL && err != -ENODEV)
    return ErrnoStatus(err,
                       absl::StrCat("detaching ", TcDirectionName(dir), " on ifindex ", ifindex));
  return absl::OkStatus();
}

absl::StatusOr<unsigned> TcQuery(int ifindex, TcDirection dir) {
  SkiffFilter f(ifindex, dir);
  int err = bpf_tc_query(&f.hook, &f.opts);
  if (err) return ErrnoStatus(err, absl::StrCat("querying tc on ifindex ", ifindex));
  return f.opts.prog_id;
}

}  // namespace skiff::loader
