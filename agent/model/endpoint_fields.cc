#include "agent/model/endpoint_fields.h"

#include <cstring>
#include <optional>
#include <string>
#include <new>
#include <utility>

#include "agent/model/ref_prefixes.h"

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

namespace {

// The inline form's fields (TargetRef::bits_).
constexpr size_t kSuffixMax = 5;
constexpr int kSizeShift = 1, kCharsShift = 4, kCharBits = 7, kIdShift = 39;
static_assert(kCharsShift + kSuffixMax * kCharBits <= kIdShift);
static_assert(kIdShift + ref_prefixes::kIdBits == 64);

uint32_t IdOf(uint64_t bits) { return static_cast<uint32_t>(bits >> kIdShift); }

}  // namespace

TargetRef::Block* TargetRef::Make(InternedString kind, InternedString namespace_,
                                  absl::string_view name) {
  void* raw = ::operator new(sizeof(Block) + name.size());
  Block* b = new (raw) Block{kind, namespace_, static_cast<uint32_t>(name.size())};
  if (!name.empty()) std::memcpy(b->name(), name.data(), name.size());
  return b;
}

// The inline form of the reference, or 0 when it has none: the name's last part (after its
// last '-', or all of it without one) is longer than kSuffixMax or not ASCII, or the pool is
// full. A name has one split, so two inline references are equal exactly when their bits are.
uint64_t TargetRef::Encode(InternedString kind, InternedString namespace_, absl::string_view name) {
  const size_t dash = name.rfind('-');
  const size_t start = dash == absl::string_view::npos ? 0 : dash + 1;
  const absl::string_view suffix = name.substr(start);
  if (suffix.size() > kSuffixMax) return 0;
  uint64_t chars = 0;
  for (size_t i = 0; i < suffix.size(); i++) {
    const auto c = static_cast<unsigned char>(suffix[i]);
    if (c >= 0x80) return 0;
    chars |= uint64_t{c} << (i * kCharBits);
  }
  const std::optional<uint32_t> id =
      ref_prefixes::Acquire(kind, namespace_, std::string_view(name.data(), start));
  if (!id) return 0;
  return uint64_t{*id} << kIdShift | chars << kCharsShift | uint64_t{suffix.size()} << kSizeShift |
         kInlineTag;
}

void TargetRef::Free() {
  if (bits_ == 0) return;
  if (is_inline()) {
    ref_prefixes::Unref(IdOf(bits_));
  } else {
    block()->~Block();
    ::operator delete(block());
  }
  bits_ = 0;
}

TargetRef::TargetRef(const ObjectReference& ref)
    : bits_(Encode(ref.kind, ref.namespace_, ref.name)) {
  if (bits_ == 0) bits_ = reinterpret_cast<uint64_t>(Make(ref.kind, ref.namespace_, ref.name));
}

TargetRef::TargetRef(const TargetRef& other) : bits_(other.bits_) {
  if (bits_ == 0) return;
  if (is_inline()) {
    ref_prefixes::Ref(IdOf(bits_));
  } else {
    const Block* b = other.block();
    bits_ = reinterpret_cast<uint64_t>(
        Make(b->kind, b->namespace_, absl::string_view(b->name(), b->name_size)));
  }
}

TargetRef& TargetRef::operator=(const TargetRef& other) {
  if (this != &other) *this = TargetRef(other);
  return *this;
}

TargetRef& TargetRef::operator=(TargetRef&& other) noexcept {
  if (this != &other) {
    Free();
    bits_ = std::exchange(other.bits_, 0);
  }
  return *this;
}

TargetRef::View TargetRef::operator*() const {
  if (!is_inline()) {
    const Block* b = block();
    return View{b->kind, b->namespace_, std::string(b->name(), b->name_size)};
  }
  const ref_prefixes::Fields f = ref_prefixes::Get(IdOf(bits_));
  const size_t size = (bits_ >> kSizeShift) & 7;
  View v{f.kind, f.namespace_, std::string()};
  v.name.reserve(f.prefix.size() + size);
  v.name.append(f.prefix);
  for (size_t i = 0; i < size; i++) {
    v.name.push_back(static_cast<char>((bits_ >> (kCharsShift + i * kCharBits)) & 0x7f));
  }
  return v;
}

bool TargetRef::operator==(const TargetRef& other) const {
  if (bits_ == other.bits_) return true;
  if (bits_ == 0 || other.bits_ == 0) return false;
  // One name has one inline form; a block holds a name without one (or made while the pool
  // was full), so only then compare texts.
  if (is_inline() && other.is_inline()) return false;
  const View a = **this, b = *other;
  return a.kind == b.kind && a.namespace_ == b.namespace_ && a.name == b.name;
}

}  // namespace skiff::model
