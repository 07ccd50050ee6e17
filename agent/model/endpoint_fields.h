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
// - TargetRef is one pointer; a reference lives in one heap block holding its interned kind
//   and namespace and the name's characters (an empty reference costs nothing beyond the
//   pointer).
// Both read like the members they replace: addresses[i] / front() give the text as written,
// target_ref->kind / ->namespace_ / ->name the reference's fields.
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
  // What -> and * give: the reference's fields (views into the block; valid while it lives).
  struct View {
    InternedString kind;
    InternedString namespace_;
    absl::string_view name;  // absl::StrCat takes it (this absl has its own string_view)
  };
  struct Arrow {
    View view;
    const View* operator->() const { return &view; }
  };

  TargetRef() = default;
  TargetRef(std::nullopt_t) {}            // NOLINT: implicit, as optional's
  TargetRef(const ObjectReference& ref);  // NOLINT: implicit, as optional's
  TargetRef(const TargetRef& other);
  TargetRef(TargetRef&& other) noexcept : block_(other.block_) { other.block_ = nullptr; }
  TargetRef& operator=(const TargetRef& other);
  TargetRef& operator=(TargetRef&& other) noexcept;
  ~TargetRef() { Free(); }

  bool has_value() const { return block_ != nullptr; }
  explicit operator bool() const { return has_value(); }
  // Only when has_value().
  View operator*() const;
  Arrow operator->() const { return Arrow{**this}; }

  bool operator==(const TargetRef& other) const;

 private:
  struct Block;
  static Block* Make(InternedString kind, InternedString namespace_, absl::string_view name);
  void Free();
  Block* block_ = nullptr;
};

}  // namespace skiff::model
