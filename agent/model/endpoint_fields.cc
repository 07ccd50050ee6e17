#include "agent/model/endpoint_fields.h"

#include <cstring>
#include <new>
#include <utility>

namespace skiff::model {
namespace {

// Whether `ip` is stored instead of `text` without changing what operator[] gives back:
// inet_pton accepts IPv4 only in its canonical dotted-quad form, IPv6 in several.
bool StoresAsIp(const std::string& text, const IpAddr& ip) {
  return ip.family == 4 || ip.ToString() == text;
}

}  // namespace

EndpointAddresses::EndpointAddresses(std::initializer_list<std::string> texts) {
  for (const std::string& t : texts) push_back(t);
}

EndpointAddresses::EndpointAddresses(const EndpointAddresses& other) : first_ip_(other.first_ip_) {
  if (other.texts_) texts_ = std::make_unique<std::vector<std::string>>(*other.texts_);
}

EndpointAddresses& EndpointAddresses::operator=(const EndpointAddresses& other) {
  if (this != &other) *this = EndpointAddresses(other);
  return *this;
}

std::string EndpointAddresses::operator[](size_t i) const {
  if (first_is_ip()) {
    if (i == 0) return first_ip_.ToString();
    --i;
  }
  return (*texts_)[i];
}

std::optional<IpAddr> EndpointAddresses::FrontIp() const {
  if (first_is_ip()) return first_ip_;
  if (!texts_ || texts_->empty()) return std::nullopt;
  return IpAddr::Parse(texts_->front());
}

void EndpointAddresses::push_back(std::string text) {
  push_back(text, empty() ? IpAddr::Parse(text) : std::nullopt);
}

void EndpointAddresses::push_back(std::string text, const std::optional<IpAddr>& parsed) {
  if (empty() && parsed && StoresAsIp(text, *parsed)) {
    first_ip_ = *parsed;  // family 4 or 6: first_is_ip()
    return;
  }
  if (!texts_) texts_ = std::make_unique<std::vector<std::string>>();
  texts_->push_back(std::move(text));
}

bool EndpointAddresses::operator==(const EndpointAddresses& other) const {
  if (first_ip_ != other.first_ip_) return false;  // family 0 (no IP) compares as such
  const size_t n = texts_ ? texts_->size() : 0;
  if (n != (other.texts_ ? other.texts_->size() : 0)) return false;
  return n == 0 || *texts_ == *other.texts_;
}

// The reference's kind and namespace, then the name's characters (not NUL-terminated).
struct TargetRef::Block {
  InternedString kind;
  InternedString namespace_;
  uint32_t name_size = 0;
  const char* name() const { return reinterpret_cast<const char*>(this + 1); }
  char* name() { return reinterpret_cast<char*>(this + 1); }
};

TargetRef::Block* TargetRef::Make(InternedString kind, InternedString namespace_,
                                  absl::string_view name) {
  void* raw = ::operator new(sizeof(Block) + name.size());
  Block* b = new (raw) Block{kind, namespace_, static_cast<uint32_t>(name.size())};
  if (!name.empty()) std::memcpy(b->name(), name.data(), name.size());
  return b;
}

void TargetRef::Free() {
  if (block_ == nullptr) return;
  block_->~Block();
  ::operator delete(block_);
  block_ = nullptr;
}

TargetRef::TargetRef(const ObjectReference& ref)
    : block_(Make(ref.kind, ref.namespace_, ref.name)) {}

TargetRef::TargetRef(const TargetRef& other) {
  if (other.block_ != nullptr) {
    const View v = *other;
    block_ = Make(v.kind, v.namespace_, v.name);
  }
}

TargetRef& TargetRef::operator=(const TargetRef& other) {
  if (this != &other) *this = TargetRef(other);
  return *this;
}

TargetRef& TargetRef::operator=(TargetRef&& other) noexcept {
  if (this != &other) {
    Free();
    block_ = std::exchange(other.block_, nullptr);
  }
  return *this;
}

TargetRef::View TargetRef::operator*() const {
  return View{block_->kind, block_->namespace_,
              absl::string_view(block_->name(), block_->name_size)};
}

bool TargetRef::operator==(const TargetRef& other) const {
  if (block_ == nullptr || other.block_ == nullptr) return block_ == other.block_;
  const View a = **this, b = *other;
  return a.kind == b.kind && a.namespace_ == b.namespace_ && a.name == b.name;
}

}  // namespace skiff::model
