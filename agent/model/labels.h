// Labels (and label selectors' matchLabels): a string map kept as one sorted vector of
// (key, value) pairs. Objects carry a handful of labels, so one allocation for all of them
// beats a tree node per label (std::map: ~112 bytes and a malloc per entry), and lookups are a
// binary search over adjacent memory. Iteration order, equality and ordering are those of the
// std::map it replaces (sorted by key; lexicographic over the pairs).
//
// Keys are interned (interned.h): a cluster uses a few label keys on many objects
// ("kubernetes.io/service-name" on every EndpointSlice, 26 characters: a heap block each as a
// std::string), so an entry is 40 bytes and no key allocation. Values are not: they are mostly
// distinct (the Service's name) and the pool never shrinks.
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/model/interned.h"

namespace skiff::model {

class Labels {
 public:
  using value_type = std::pair<InternedString, std::string>;
  // Entries are read-only through iterators: changing a key would break the order.
  using const_iterator = std::vector<value_type>::const_iterator;
  using iterator = const_iterator;

  Labels() = default;
  // As std::map's: on a repeated key the first entry wins.
  Labels(std::initializer_list<value_type> entries) {
    entries_.reserve(entries.size());
    for (const value_type& e : entries) insert(e.first, e.second);
  }

  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  void clear() { entries_.clear(); }
  void reserve(size_t n) { entries_.reserve(n); }

  const_iterator find(std::string_view key) const {
    auto it = LowerBound(key);
    return it != entries_.end() && it->first == key ? it : entries_.end();
  }
  size_t count(std::string_view key) const { return find(key) == end() ? 0 : 1; }
  bool contains(std::string_view key) const { return count(key) > 0; }
  const std::string& at(std::string_view key) const {
    auto it = find(key);
    if (it == end()) throw std::out_of_range("Labels::at: no such key");
    return it->second;
  }

  // Inserts "" when absent, as std::map's operator[].
  std::string& operator[](std::string_view key) {
    auto it = LowerBound(key);
    if (it == entries_.end() || it->first != key) {
      it = entries_.emplace(it, InternedString(key), std::string());
    }
    return it->second;
  }
  // Returns whether the key was new; an existing value is kept (std::map::insert).
  bool insert(std::string_view key, std::string_view value) {
    auto it = LowerBound(key);
    if (it != entries_.end() && it->first == key) return false;
    entries_.emplace(it, InternedString(key), std::string(value));
    return true;
  }
  void insert_or_assign(std::string_view key, std::string value) {
    (*this)[key] = std::move(value);
  }
  size_t erase(std::string_view key) {
    auto it = find(key);
    if (it == end()) return 0;
    entries_.erase(it);
    return 1;
  }

  bool operator==(const Labels&) const = default;
  auto operator<=>(const Labels&) const = default;

 private:
  std::vector<value_type>::iterator LowerBound(std::string_view key) {
    return std::lower_bound(
        entries_.begin(), entries_.end(), key,
        [](const value_type& e, std::string_view k) { return e.first.str() < k; });
  }
  const_iterator LowerBound(std::string_view key) const {
    return std::lower_bound(
        entries_.begin(), entries_.end(), key,
        [](const value_type& e, std::string_view k) { return e.first.str() < k; });
  }

  std::vector<value_type> entries_;  // sorted by key, keys unique
};

}  // namespace skiff::model
