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

}  // namespace skiff::model
