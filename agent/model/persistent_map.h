// PersistentMap<K, V>: an ordered map (an AVL tree) whose copies share their nodes. Copying is
// O(1); a change to a copy copies only the O(log n) nodes on the path to the changed key, and
// a node no other copy holds is changed in place. So the store can hand the reconcile loop a
// snapshot, and the loop can hand the API its state, without copying 100,000 entries each
// time (docs/BENCHMARKS.md, "one endpoint change").
//
// The interface is the subset of std::map the agent uses, with one difference: iterators are
// const (change values with operator[], at(), insert_or_assign). Iteration is in key order.
//
// Threads: like std::map, one PersistentMap object must not be used by two threads at once
// when one of them writes. Different copies may be used (and changed) by different threads:
// shared nodes are never written, only nodes this copy holds alone.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <utility>

namespace skiff::model {

template <typename K, typename V, typename Compare = std::less<K>>
class PersistentMap {
 public:
  using key_type = K;
  using mapped_type = V;
  using value_type = std::pair<const K, V>;
  using size_type = size_t;

 private:
  struct Node;
  // An owning pointer to a node, counted in the node itself: 8 bytes a child instead of
  // shared_ptr's 16, and no separate control block (make_shared's adds 16 bytes a node).
  // With the store's maps, the desired state's and their snapshots holding hundreds of
  // thousands of nodes at 100,000 Services, that is 32 bytes less per node.
  class Ptr {
   public:
    Ptr() = default;
    explicit Ptr(Node* n) : n_(n) {}  // takes the node's first reference
    Ptr(const Ptr& o) : n_(o.n_) {
      if (n_ != nullptr) n_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    Ptr(Ptr&& o) noexcept : n_(o.n_) { o.n_ = nullptr; }
    Ptr& operator=(const Ptr& o) {
      Ptr(o).swap(*this);
      return *this;
    }
    Ptr& operator=(Ptr&& o) noexcept {
      Ptr(std::move(o)).swap(*this);
      return *this;
    }
    ~Ptr() { reset(); }
    void reset() {
      Node* n = n_;
      n_ = nullptr;
      // The last owner frees the node (and so drops its children); acq_rel orders every
      // earlier owner's reads of the node before the delete.
      if (n != nullptr && n->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete n;
    }
    void swap(Ptr& o) noexcept { std::swap(n_, o.n_); }
    Node* get() const { return n_; }
    Node* operator->() const { return n_; }
    Node& operator*() const { return *n_; }
    explicit operator bool() const { return n_ != nullptr; }
    bool operator==(const Ptr& o) const { return n_ == o.n_; }
    // Whether this is the node's only owner (then this map may change it in place).
    bool unique() const { return n_->refs.load(std::memory_order_acquire) == 1; }

   private:
    Node* n_ = nullptr;
  };

  struct Node {
    value_type kv;
    Ptr left, right;
    std::atomic<uint32_t> refs{1};
    int height = 1;
    Node(const K& key, V value) : kv(key, std::move(value)) {}
    // Shares the children; the copy starts with one owner.
    Node(const Node& o) : kv(o.kv), left(o.left), right(o.right), height(o.height) {}
  };
  // AVL height ≤ 1.44·log2(n+2): 64 levels hold far more than 2^40 entries.
  static constexpr int kMaxDepth = 64;

 public:
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = PersistentMap::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = const value_type*;
    using reference = const value_type&;

    const_iterator() = default;
    reference operator*() const { return stack_[depth_ - 1]->kv; }
    pointer operator->() const { return &stack_[depth_ - 1]->kv; }
    const_iterator& operator++() {
      const Node* n = stack_[--depth_];
      for (const Node* c = n->right.get(); c != nullptr; c = c->left.get()) stack_[depth_++] = c;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const const_iterator& o) const {
      if (depth_ == 0 || o.depth_ == 0) return depth_ == o.depth_;
      return stack_[depth_ - 1] == o.stack_[o.depth_ - 1];
    }

   private:
    friend class PersistentMap;
    // The current node on top, below it the ancestors still to visit (those left of which
    // the current node lies). Empty: end().
    const Node* stack_[kMaxDepth];
    int depth_ = 0;
  };
  using iterator = const_iterator;

  PersistentMap() = default;
  PersistentMap(std::initializer_list<value_type> init) {
    for (const auto& kv : init) insert_or_assign(kv.first, kv.second);
  }

  size_t size() const { return size_; }
  int height() const { return H(root_); }  // ≤ 1.44·log2(size + 2): the tree stays balanced
  bool empty() const { return size_ == 0; }
  void clear() {
    root_.reset();
    size_ = 0;
  }

  const_iterator begin() const {
    const_iterator it;
    for (const Node* n = root_.get(); n != nullptr; n = n->left.get()) it.stack_[it.depth_++] = n;
    return it;
  }
  const_iterator end() const { return const_iterator(); }
  const_iterator cbegin() const { return begin(); }
  const_iterator cend() const { return end(); }

  const_iterator find(const K& key) const {
    const_iterator it;
    for (const Node* n = root_.get(); n != nullptr;) {
      if (less_(key, n->kv.first)) {
        it.stack_[it.depth_++] = n;
        n = n->left.get();
      } else if (less_(n->kv.first, key)) {
        n = n->right.get();
      } else {
        it.stack_[it.depth_++] = n;
        return it;
      }
    }
    return end();
  }
  // The first entry whose key is not less than `key`.
  const_iterator lower_bound(const K& key) const {
    const_iterator it;
    for (const Node* n = root_.get(); n != nullptr;) {
      if (less_(n->kv.first, key)) {
        n = n->right.get();
      } else {
        it.stack_[it.depth_++] = n;
        n = n->left.get();
      }
    }
    return it;
  }
  // The first entry whose key is greater than `key`.
  const_iterator upper_bound(const K& key) const {
    const_iterator it;
    for (const Node* n = root_.get(); n != nullptr;) {
      if (less_(key, n->kv.first)) {
        it.stack_[it.depth_++] = n;
        n = n->left.get();
      } else {
        n = n->right.get();
      }
    }
    return it;
  }
  size_t count(const K& key) const { return FindNode(key) != nullptr ? 1 : 0; }
  bool contains(const K& key) const { return FindNode(key) != nullptr; }

  const V& at(const K& key) const {
    const Node* n = FindNode(key);
    if (n == nullptr) throw std::out_of_range("PersistentMap::at");
    return n->kv.second;
  }
  // Mutable access copies the shared nodes on the key's path first.
  V& at(const K& key) {
    if (FindNode(key) == nullptr) throw std::out_of_range("PersistentMap::at");
    return MutableValue(key);
  }
  V& operator[](const K& key) {
    if (FindNode(key) == nullptr) Insert(key, V());
    return MutableValue(key);
  }

  // As std::map's: when the key exists, `args` are left untouched (not moved from).
  template <typename... A>
  std::pair<const_iterator, bool> try_emplace(const K& key, A&&... args) {
    if (FindNode(key) != nullptr) return {find(key), false};
    Insert(key, V(std::forward<A>(args)...));
    return {find(key), true};
  }
  template <typename... A>
  std::pair<const_iterator, bool> emplace(const K& key, A&&... args) {
    return try_emplace(key, std::forward<A>(args)...);
  }
  std::pair<const_iterator, bool> insert(const value_type& kv) {
    return try_emplace(kv.first, kv.second);
  }
  template <typename M>
  std::pair<const_iterator, bool> insert_or_assign(const K& key, M&& value) {
    if (FindNode(key) != nullptr) {
      MutableValue(key) = std::forward<M>(value);
      return {find(key), false};
    }
    Insert(key, V(std::forward<M>(value)));
    return {find(key), true};
  }

  size_t erase(const K& key) {
    if (FindNode(key) == nullptr) return 0;
    Erase(root_, key);
    --size_;
    return 1;
  }
  // Returns the entry after the erased one.
  const_iterator erase(const_iterator pos) {
    const K key = pos->first;
    erase(key);
    return upper_bound(key);
  }

  bool operator==(const PersistentMap& o) const {
    if (size_ != o.size_) return false;
    if (root_ == o.root_) return true;
    return std::equal(begin(), end(), o.begin(), [](const value_type& a, const value_type& b) {
      return !Compare()(a.first, b.first) && !Compare()(b.first, a.first) && a.second == b.second;
    });
  }

 private:
  static int H(const Ptr& p) { return p ? p->height : 0; }
  static void Update(Node* n) { n->height = 1 + std::max(H(n->left), H(n->right)); }
  // The node behind p, made exclusive to this map: copied when another map shares it.
  // (unique() loads the count with acquire: whoever dropped the other references is done
  // reading the node.)
  static Node* Mut(Ptr& p) {
    if (!p.unique()) p = Ptr(new Node(*p));
    return p.get();
  }
  static void RotateRight(Ptr& p) {
    Ptr l = std::move(Mut(p)->left);
    Node* ln = Mut(l);
    p->left = std::move(ln->right);
    Update(p.get());
    ln->right = std::move(p);
    p = std::move(l);
    Update(p.get());
  }
  static void RotateLeft(Ptr& p) {
    Ptr r = std::move(Mut(p)->right);
    Node* rn = Mut(r);
    p->right = std::move(rn->left);
    Update(p.get());
    rn->left = std::move(p);
    p = std::move(r);
    Update(p.get());
  }
  static void Rebalance(Ptr& p) {
    Node* n = Mut(p);
    Update(n);
    const int balance = H(n->left) - H(n->right);
    if (balance > 1) {
      if (H(n->left->left) < H(n->left->right)) RotateLeft(n->left);
      RotateRight(p);
    } else if (balance < -1) {
      if (H(n->right->right) < H(n->right->left)) RotateRight(n->right);
      RotateLeft(p);
    }
  }

  const Node* FindNode(const K& key) const {
    for (const Node* n = root_.get(); n != nullptr;) {
      if (less_(key, n->kv.first)) {
        n = n->left.get();
      } else if (less_(n->kv.first, key)) {
        n = n->right.get();
      } else {
        return n;
      }
    }
    return nullptr;
  }
  // Precondition: key is present.
  V& MutableValue(const K& key) {
    Ptr* p = &root_;
    while (true) {
      Node* n = Mut(*p);
      if (less_(key, n->kv.first)) {
        p = &n->left;
      } else if (less_(n->kv.first, key)) {
        p = &n->right;
      } else {
        return n->kv.second;
      }
    }
  }
  // Precondition: key is absent.
  void Insert(const K& key, V value) {
    InsertAt(root_, key, value);
    ++size_;
  }
  void InsertAt(Ptr& p, const K& key, V& value) {
    if (!p) {
      p = Ptr(new Node(key, std::move(value)));
      return;
    }
    Node* n = Mut(p);
    InsertAt(less_(key, n->kv.first) ? n->left : n->right, key, value);
    Rebalance(p);
  }
  // Detaches the leftmost node of p's subtree into `out`.
  static void RemoveMin(Ptr& p, Ptr& out) {
    if (!p->left) {
      out = std::move(p);
      p = std::move(Mut(out)->right);
      return;
    }
    RemoveMin(Mut(p)->left, out);
    Rebalance(p);
  }
  // Precondition: key is present.
  void Erase(Ptr& p, const K& key) {
    Node* n = Mut(p);
    if (less_(key, n->kv.first)) {
      Erase(n->left, key);
    } else if (less_(n->kv.first, key)) {
      Erase(n->right, key);
    } else if (!n->left || !n->right) {
      Ptr child = n->left ? std::move(n->left) : std::move(n->right);
      p = std::move(child);
      return;
    } else {
      Ptr right = std::move(n->right);
      Ptr min;
      RemoveMin(right, min);
      Node* m = Mut(min);
      m->left = std::move(n->left);
      m->right = std::move(right);
      p = std::move(min);
    }
    Rebalance(p);
  }

  Ptr root_;
  size_t size_ = 0;
  [[no_unique_address]] Compare less_;
};

}  // namespace skiff::model
