#include "agent/loader/tc.h"

#include <bpf/libbpf.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "agent/loader/skeleton.h"

namespace skiff::loader {
namespace {

bpf_tc_attach_point AttachPoint(TcDirection dir) {
  return dir == TcDirection::kIngress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
}

}  // namespace

const char* TcDirectionName(TcDirection dir) {
  return dir == TcDirection::kIngress ? "tc-ingress" : "tc-egress";
}

absl::Status TcAttach(int ifindex, TcDirection dir, int prog_fd) {
  LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = ifindex;
  hook.attach_point = AttachPoint(dir);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST)
    return ErrnoStatus(err, absl::StrCat("creating clsact on ifindex ", ifindex));
  LIBBPF_OPTS(bpf_tc_opts, opts);
  opts.handle = kSkiffTcHandle;
  opts.priority = kSkiffTcPriority;
  opts.prog_fd = prog_fd;
  opts.flags = BPF_TC_F_REPLACE;
  err = bpf_tc_attach(&hook, &opts);
  if (err)
    return ErrnoStatus(err,
                       absl::StrCat("attaching ", TcDirectionName(dir), " on ifindex ", ifindex));
  return absl::OkStatus();
}

absl::Status TcDetach(int ifindex, TcDirection dir) {
  LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = ifindex;
  hook.attach_point = AttachPoint(dir);
  LIBBPF_OPTS(bpf_tc_opts, opts);
  opts.handle = kSkiffTcHandle;
  opts.priority = kSkiffTcPriority;
  int err = bpf_tc_detach(&hook, &opts);
  if (err && err != -ENOENT && err != -EINVAL && err != -ENODEV)
    return ErrnoStatus(err,
                       absl::StrCat("detaching ", TcDirectionName(dir), " on ifindex ", ifindex));
  return absl::OkStatus();
}

absl::StatusOr<unsigned> TcQuery(int ifindex, TcDirection dir) {
  LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = ifindex;
  hook.attach_point = AttachPoint(dir);
  LIBBPF_OPTS(bpf_tc_opts, opts);
  opts.handle = kSkiffTcHandle;
  opts.priority = kSkiffTcPriority;
  int err = bpf_tc_query(&hook, &opts);
  if (err) return ErrnoStatus(err, absl::StrCat("querying tc on ifindex ", ifindex));
  return opts.prog_id;
}

}  // namespace skiff::loader
