// RareList<T> and RareString: a list or a text that nearly every object leaves empty (a
// Service's externalIPs, loadBalancerSourceRanges, externalName, status ingress IPs), kept as
// one pointer that is null when empty: 8 bytes instead of a std::vector's 24 or a
// std::string's 32. 100,000 Services carry four of them (docs/BENCHMARKS.md, session 8).
//
// They read like the vector and string they replace (iteration, size, [], push_back,
// assignment from a braced list or a string, ==); copies are deep, as the standard ones'.
#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace skiff::model {

template <typename T>
class RareList {
 public:
  using value_type = T;
  using const_iterator = const T*;
  using iterator = T*;

  RareList() = default;
  RareList(std::initializer_list<T> init) { *this = init; }
  RareList(const RareList& o) : v_(o.empty() ? nullptr : std::make_unique<std::vector<T>>(*o.v_)) {}
  RareList(RareList&&) noexcept = default;
  RareList& operator=(const RareList& o) {
    if (this != &o) v_ = o.empty() ? nullptr : std::make_unique<std::vector<T>>(*o.v_);
    return *this;
  }
  RareList& operator=(RareList&&) noexcept = default;
  RareList& operator=(std::initializer_list<T> init) {
    v_ = init.size() == 0 ? nullptr : std::make_unique<std::vector<T>>(init);
    return *this;
  }
  ~RareList() = default;

  size_t size() const { return v_ ? v_->size() : 0; }
  bool empty() const { return size() == 0; }
  const T* begin() const { return v_ ? v_->data() : nullptr; }
  const T* end() const { return begin() + size(); }
  T* begin() { return v_ ? v_->data() : nullptr; }
  T* end() { return begin() + size(); }
  const T& operator[](size_t i) const { return (*v_)[i]; }
  T& operator[](size_t i) { return (*v_)[i]; }
  const T& front() const { return v_->front(); }
  const T& back() const { return v_->back(); }

  void push_back(T value) {
    if (!v_) v_ = std::make_unique<std::vector<T>>();
    v_->push_back(std::move(value));
  }
  void clear() { v_.reset(); }

  friend bool operator==(const RareList& a, const RareList& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  std::unique_ptr<std::vector<T>> v_;  // null when empty
};

class RareString {
 public:
  RareString() = default;
  RareString(std::string_view text) { *this = text; }                          // NOLINT: implicit
  RareString(const std::string& text) : RareString(std::string_view(text)) {}  // NOLINT
  RareString(const char* text) : RareString(std::string_view(text)) {}         // NOLINT
  RareString(const RareString& o) : RareString(o.str()) {}
  RareString(RareString&&) noexcept = default;
  RareString& operator=(const RareString& o) {
    if (this != &o) *this = std::string_view(o.str());
    return *this;
  }
  RareString& operator=(RareString&&) noexcept = default;
  RareString& operator=(std::string_view text) {
    s_ = text.empty() ? nullptr : std::make_unique<std::string>(text);
    return *this;
  }
  RareString& operator=(const std::string& text) { return *this = std::string_view(text); }
  RareString& operator=(const char* text) { return *this = std::string_view(text); }
  ~RareString() = default;

  const std::string& str() const { return s_ ? *s_ : Empty(); }
  operator const std::string&() const { return str(); }  // NOLINT: implicit
  bool empty() const { return s_ == nullptr; }
  size_t size() const { return str().size(); }

  friend bool operator==(const RareString& a, const RareString& b) { return a.str() == b.str(); }
  friend bool operator==(const RareString& a, std::string_view b) { return a.str() == b; }
  friend bool operator==(const RareString& a, const std::string& b) { return a.str() == b; }
  friend bool operator==(const RareString& a, const char* b) { return a.str() == b; }

 private:
  static const std::string& Empty() {
    static const std::string empty;
    return empty;
  }
  std::unique_ptr<std::string> s_;  // null when empty
};

}  // namespace skiff::model
