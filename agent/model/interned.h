// InternedString: a string that many objects repeat (an endpoint's node name, a target
// reference's kind and namespace), stored once for the whole process and held by pointer.
//
// 100,000 EndpointSlices of 10 endpoints name a handful of nodes a million times; as
// std::string each copy costs 32 bytes, plus a heap block when the name is longer than 15
// characters (cloud node names are). Interned, each costs 8 bytes.
//
// The pool only grows: it holds each distinct text once, and the texts interned here (node
// names, namespaces, kinds) are few next to the objects that repeat them. Equality is pointer
// equality, so comparing two interned strings is one instruction. Thread-safe: sources decode
// on their own threads.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace skiff::model {

class InternedString {
 public:
  InternedString() : text_(&Empty()) {}
  InternedString(std::string_view text) : text_(Intern(text)) {}  // NOLINT: implicit
  InternedString(const std::string& text) : InternedString(std::string_view(text)) {}  // NOLINT
  InternedString(const char* text) : InternedString(std::string_view(text)) {}         // NOLINT

  const std::string& str() const { return *text_; }
  operator const std::string&() const { return *text_; }  // NOLINT: implicit
  operator std::string_view() const { return *text_; }    // NOLINT: implicit
  // absl::StrCat and friends take this absl's own string_view.
  operator absl::string_view() const { return *text_; }  // NOLINT: implicit
  bool empty() const { return text_->empty(); }
  size_t size() const { return text_->size(); }
  const char* c_str() const { return text_->c_str(); }

  friend bool operator==(const InternedString& a, const InternedString& b) {
    return a.text_ == b.text_;
  }
  friend bool operator==(const InternedString& a, std::string_view b) { return *a.text_ == b; }
  friend bool operator==(const InternedString& a, const std::string& b) { return *a.text_ == b; }
  friend bool operator==(const InternedString& a, const char* b) { return *a.text_ == b; }
  friend bool operator==(const InternedString& a, absl::string_view b) { return *a.text_ == b; }
  // In text order; equal texts are one pointer, so comparing two keys of one namespace (the
  // store's maps, the manifest source's bookkeeping) skips the string compare.
  friend std::strong_ordering operator<=>(const InternedString& a, const InternedString& b) {
    if (a.text_ == b.text_) return std::strong_ordering::equal;
    return *a.text_ <=> *b.text_;
  }

  // How many distinct texts the pool holds (for tests and the memory accounting).
  static size_t PoolSize();

 private:
  static const std::string& Empty();
  static const std::string* Intern(std::string_view text);
  const std::string* text_;
};

// InternedId: the same as a 4-byte number, for the one field a million objects repeat where
// InternedString's 8-byte pointer would cost more than the text's share: an endpoint's node
// name (objects.h: 40 bytes an Endpoint instead of 48). The number indexes a table of the
// pool's texts that only grows, read without a lock (a table slot is written once, before any
// id naming it is handed out). Reads like InternedString.
class InternedId {
 public:
  InternedId() = default;                                                      // ""
  InternedId(std::string_view text) : id_(IdOf(text)) {}                       // NOLINT: implicit
  InternedId(const std::string& text) : InternedId(std::string_view(text)) {}  // NOLINT
  InternedId(const char* text) : InternedId(std::string_view(text)) {}         // NOLINT
  InternedId(InternedString text) : id_(IdOf(text)) {}                         // NOLINT

  const std::string& str() const { return TextOf(id_); }
  operator const std::string&() const { return str(); }  // NOLINT: implicit
  operator std::string_view() const { return str(); }    // NOLINT: implicit
  operator absl::string_view() const { return str(); }   // NOLINT: implicit
  bool empty() const { return id_ == 0; }
  size_t size() const { return str().size(); }
  const char* c_str() const { return str().c_str(); }

  friend bool operator==(InternedId a, InternedId b) { return a.id_ == b.id_; }
  friend bool operator==(InternedId a, std::string_view b) { return a.str() == b; }
  friend bool operator==(InternedId a, const std::string& b) { return a.str() == b; }
  friend bool operator==(InternedId a, const char* b) { return a.str() == b; }
  friend bool operator==(InternedId a, absl::string_view b) { return a.str() == b; }
  friend std::strong_ordering operator<=>(InternedId a, InternedId b) {
    if (a.id_ == b.id_) return std::strong_ordering::equal;
    return a.str() <=> b.str();
  }

  // How many distinct texts have an id (for tests).
  static size_t Count();

 private:
  static uint32_t IdOf(InternedString text);
  static const std::string& TextOf(uint32_t id);
  uint32_t id_ = 0;  // 0 is ""
};

}  // namespace skiff::model
