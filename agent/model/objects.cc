#include "agent/model/objects.h"

#include <algorithm>
#include <charconv>
#include <type_traits>

#include "absl/strings/str_cat.h"

namespace skiff::model {

template <ObjectKind kKind, typename T>
constexpr bool kAlternativeIs =
    std::is_same_v<std::variant_alternative_t<static_cast<size_t>(kKind), Object>, T>;
static_assert(kAlternativeIs<ObjectKind::kNamespace, Namespace> &&
                  kAlternativeIs<ObjectKind::kNode, Node> &&
                  kAlternativeIs<ObjectKind::kPod, Pod> &&
                  kAlternativeIs<ObjectKind::kService, Service> &&
                  kAlternativeIs<ObjectKind::kEndpointSlice, EndpointSlice> &&
                  kAlternativeIs<ObjectKind::kNetworkPolicy, NetworkPolicy>,
              "Object's alternatives must follow ObjectKind's order (KeyOf relies on it)");

std::optional<Cidr> Cidr::Parse(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  std::optional<IpAddr> ip = IpAddr::Parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  const std::string len_text = text.substr(slash + 1);
  unsigned len = 0;
  auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (len_text.empty() || ec != std::errc() || end != len_text.data() + len_text.size()) {
    return std::nullopt;
  }
  const unsigned max_len = ip->family == 4 ? 32 : 128;
  if (len > max_len) return std::nullopt;
  Cidr cidr{*ip, static_cast<uint8_t>(len)};
  // Canonicalize host bits away, as net.ParseCIDR does, so equal ranges compare equal.
  for (unsigned bit = len; bit < max_len; ++bit) {
    cidr.addr.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return cidr;
}

std::string Cidr::ToString() const { return absl::StrCat(addr.ToString(), "/", prefix_len); }

bool Cidr::Contains(const IpAddr& ip) const {
  if (ip.family != addr.family) return false;
  for (unsigned bit = 0; bit < prefix_len; ++bit) {
    const uint8_t mask = static_cast<uint8_t>(0x80u >> (bit % 8));
    if ((ip.bytes[bit / 8] & mask) != (addr.bytes[bit / 8] & mask)) return false;
  }
  return true;
}

const std::string& IntOrString::name() const {
  static const std::string kEmpty;
  return is_name() ? std::get<InternedString>(value).str() : kEmpty;
}

std::string IntOrString::ToString() const { return is_name() ? name() : absl::StrCat(number()); }

std::string EndpointSlice::service_name() const {
  auto it = metadata.labels.find(kServiceNameLabel);
  return it == metadata.labels.end() ? std::string() : it->second;
}

bool LabelSelector::Matches(const Labels& labels) const {
  for (const auto& [key, value] : match_labels) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  for (const LabelSelectorRequirement& req : match_expressions) {
    auto it = labels.find(req.key);
    const bool has = it != labels.end();
    const bool in_values =
        has && std::find(req.values.begin(), req.values.end(), it->second) != req.values.end();
    switch (req.op) {
      case SelectorOperator::kIn:
        if (!in_values) return false;
        break;
      case SelectorOperator::kNotIn:
        if (in_values) return false;
        break;
      case SelectorOperator::kExists:
        if (!has) return false;
        break;
      case SelectorOperator::kDoesNotExist:
        if (has) return false;
        break;
    }
  }
  return true;
}

std::string KindName(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kNamespace:
      return "Namespace";
    case ObjectKind::kNode:
      return "Node";
    case ObjectKind::kPod:
      return "Pod";
    case ObjectKind::kService:
      return "Service";
    case ObjectKind::kEndpointSlice:
      return "EndpointSlice";
    case ObjectKind::kNetworkPolicy:
      return "NetworkPolicy";
  }
  return "Unknown";
}

std::string NamespacedName::ToString() const {
  return namespace_.empty() ? name : absl::StrCat(namespace_.str(), "/", name);
}

std::string ObjectKey::ToString() const { return absl::StrCat(KindName(kind), " ", id.ToString()); }

SharedObject Share(Object object) {
  return std::visit(
      [](auto& typed) -> SharedObject {
        using T = std::decay_t<decltype(typed)>;
        return std::make_shared<const T>(std::move(typed));
      },
      object);
}

namespace {

template <typename T>
const T& Deref(const T& object) {
  return object;
}
template <typename T>
const T& Deref(const std::shared_ptr<const T>& object) {
  return *object;
}

// Object and SharedObject alike: their alternatives are declared in ObjectKind order.
template <typename Variant>
ObjectKeyRef KeyRefOfVariant(const Variant& object) {
  const auto kind = static_cast<ObjectKind>(object.index());
  return std::visit(
      [kind](const auto& o) {
        const auto& meta = Deref(o).metadata;
        return ObjectKeyRef(kind, meta.namespace_, meta.name);
      },
      object);
}

}  // namespace

ObjectKeyRef KeyRefOf(const Object& object) { return KeyRefOfVariant(object); }

ObjectKeyRef KeyRefOf(const SharedObject& object) { return KeyRefOfVariant(object); }

ObjectKey KeyOf(const Object& object) { return KeyRefOf(object).ToKey(); }

ObjectKey KeyOf(const SharedObject& object) { return KeyRefOf(object).ToKey(); }

std::string ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kTcp:
      return "TCP";
    case Protocol::kUdp:
      return "UDP";
    case Protocol::kSctp:
      return "SCTP";
  }
  return "Unknown";
}

}  // namespace skiff::model
