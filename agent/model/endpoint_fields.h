// The compact parts of an EndpointSlice endpoint (objects.h): its addresses and its targetRef.
//
// A cluster's store holds one Endpoint per backend pod, a million at 100,000 Services × 10,
// so their size is most of the store. As plain members the addresses were an inlined vector of
// std::string (40 bytes) and the targetRef an optional of two interned strings and a
// std::string (56 bytes, plus a heap block for pod names longer than 15 characters). Here:
// - EndpointAddresses keeps the first address as a parsed IpAddr when its text is the
//   address's canonical form (every valid IPv4 address; IPv6 written as inet_ntop writes it),
//   and any other address (FQDNs, further addresses, non-canonical IPv6 text) out of line as
//   text: 32 bytes, no heap block for the usual single IP.
// - TargetRef is 8 bytes. A Deployment's pod (<deployment>-<replicaset hash>-<5 characters>),
//   and a DaemonSet's or StatefulSet's (<name>-<5 characters>, <name>-<ordinal>), needs no heap
//   block: the kind, namespace and name up to its last '-' are an entry of
//   ref_prefixes.h, shared by every pod of the replicaset and named by a 25-bit id, and the
//   rest of the name (at most 5 ASCII characters) is kept in the 8 bytes with it. Any other
//   reference (a longer last part, non-ASCII text) lives in one heap block holding its interned
//   kind and namespace and the name's characters. An empty reference costs nothing more.
//   At 100,000 Services × 10 endpoints that is a million 48-64 byte blocks fewer, for 100,000
//   entries of about 64 bytes.
// Both read like the members they replace: addresses[i] / front() give the text as written,
// target_ref->kind / ->namespace_ / ->name the reference's fields (the name as a string made
// for the caller: it may not be stored in one piece).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/model/desired_state.h"
#include "agent/model/interned.h"

namespace skiff::model {

// kind and namespace_ repeat across objects: interned (interned.h).
struct ObjectReference {
  InternedString kind;
  InternedString namespace_;
  std::string name;
  bool operator==(const ObjectReference&) const = default;
};

class EndpointAddresses {
 public:
  EndpointAddresses() = default;
  EndpointAddresses(std::initializer_list<std::string> texts);  // NOLINT: as a vector's
  EndpointAddresses(const EndpointAddresses& other);
  EndpointAddresses(EndpointAddresses&&) noexcept = default;
  EndpointAddresses& operator=(const EndpointAddresses& other);
  EndpointAddresses& operator=(EndpointAddresses&&) noexcept = default;
  ~EndpointAddresses() = default;

  size_t size() const { return (first_is_ip() ? 1 : 0) + (texts_ ? texts_->size() : 0); }
  bool empty() const { return size() == 0; }
  // The address's text as written in the manifest or API object.
  std::string operator[](size_t i) const;
  std::string front() const { return (*this)[0]; }
  // The first address as an IP, without a round trip through text; nullopt when it is not an
  // IP (or there is none).
  std::optional<IpAddr> FrontIp() const;

  void push_back(std::string text);
  // The same when the caller already parsed the text (nullopt: not an IP).
  void push_back(std::string text, const std::optional<IpAddr>& parsed);

  bool operator==(const EndpointAddresses& other) const;

 private:
  // Whether the first address is first_ip_ (else it is texts_[0]).
  bool first_is_ip() const { return first_ip_.family != 0; }
  // The other addresses in order, as text; null when there are none. First, so that the
  // 7 bytes after first_ip_ are tail padding an Endpoint puts its conditions and node name in.
  std::unique_ptr<std::vector<std::string>> texts_;
  IpAddr first_ip_{.family = 0};  // the first address when it is an IP; family 0 when not
};

class TargetRef {
 public:
  // What -> and * give: the reference's fields.
  struct View {
    InternedString kind;
    InternedString namespace_;
    std::string name;
  };
  struct Arrow {
    View view;
    const View* operator->() const { return &view; }
  };

  TargetRef() = default;
  TargetRef(std::nullopt_t) {}            // NOLINT: implicit, as optional's
  TargetRef(const ObjectReference& ref);  // NOLINT: implicit, as optional's
  TargetRef(const TargetRef& other);
  TargetRef(TargetRef&& other) noexcept : bits_(other.bits_) { other.bits_ = 0; }
  TargetRef& operator=(const TargetRef& other);
  TargetRef& operator=(TargetRef&& other) noexcept;
  ~TargetRef() { Free(); }

  bool has_value() const { return bits_ != 0; }
  explicit operator bool() const { return has_value(); }
  // Only when has_value().
  View operator*() const;
  Arrow operator->() const { return Arrow{**this}; }

  bool operator==(const TargetRef& other) const;

  // Whether the reference is kept in the 8 bytes and a ref_prefixes entry, without a block of
  // its own (for tests).
  bool is_inline() const { return (bits_ & kInlineTag) != 0; }

 private:
  struct Block;
  // bits_: 0 when empty; else a Block* (aligned, so bit 0 is clear); else, with bit 0 set,
  // inline: bits 1-3 the suffix's length (0-5), bits 4-38 its characters (7 bits each, the
  // first lowest), bits 39-63 the ref_prefixes id.
  static constexpr uint64_t kInlineTag = 1;
  static Block* Make(InternedString kind, InternedString namespace_, absl::string_view name);
  static uint64_t Encode(InternedString kind, InternedString namespace_, absl::string_view name);
  Block* block() const { return reinterpret_cast<Block*>(bits_); }
  void Free();
  uint64_t bits_ = 0;
};
static_assert(sizeof(TargetRef) == 8);

}  // namespace skiff::model
