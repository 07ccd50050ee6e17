#include "agent/sources/yaml_tree.h"

#include <yaml.h>

#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"

namespace skiff::sources {
namespace {

// Owns one libyaml event.
struct Event {
  yaml_event_t e{};
  ~Event() { yaml_event_delete(&e); }
};

bool IsPlainNull(const char* value, size_t len) {
  const std::string_view v(value, len);
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

std::string_view Str(const yaml_char_t* s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

}  // namespace

bool YamlStream::Parse(std::string_view text, std::string* error) {
  nodes_.clear();
  documents_.clear();
  text_.clear();
  children_.clear();
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) {
    *error = "out of memory";
    return false;
  }
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());
  // Manifests run at about one node per 16 bytes; reserving avoids regrowing a large array.
  nodes_.reserve(text.size() / 16 + 16);
  text_.reserve(text.size() / 2 + 16);
  // Where each node's text and children start in text_ / children_: the views are set once
  // parsing is done and the arrays no longer move.
  std::vector<uint32_t> text_at, children_at;
  text_at.reserve(nodes_.capacity());
  children_at.reserve(nodes_.capacity());
  // Open collections (node index, where its children start in `pending`).
  std::vector<std::pair<uint32_t, size_t>> stack;
  std::vector<uint32_t> pending;  // children of the open collections, innermost last
  std::map<std::string, uint32_t, std::less<>> anchors;  // per document
  bool ok = true;
  // Attaches a finished (or just opened) node to its parent, or makes it a document root.
  auto attach = [&](uint32_t index) {
    if (stack.empty()) {
      documents_.push_back(index);
    } else {
      pending.push_back(index);
    }
  };
  auto add = [&](YamlNode::Kind kind, const yaml_char_t* anchor) -> uint32_t {
    const auto index = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back().kind = kind;
    text_at.push_back(0);
    children_at.push_back(0);
    if (anchor != nullptr) anchors.insert_or_assign(std::string(Str(anchor)), index);
    attach(index);
    return index;
  };
  while (ok) {
    Event ev;
    if (!yaml_parser_parse(&parser, &ev.e)) {
      *error = absl::StrCat("line ", parser.problem_mark.line + 1, ", column ",
                            parser.problem_mark.column + 1, ": ",
                            parser.problem != nullptr ? parser.problem : "syntax error");
      ok = false;
      break;
    }
    const yaml_event_t& e = ev.e;
    if (e.type == YAML_STREAM_END_EVENT) break;
    switch (e.type) {
      case YAML_DOCUMENT_START_EVENT:
        anchors.clear();
        break;
      case YAML_SCALAR_EVENT: {
        const auto& s = e.data.scalar;
        const std::string_view tag = Str(s.tag);
        const bool quoted = s.style != YAML_PLAIN_SCALAR_STYLE || tag == "tag:yaml.org,2002:str";
        const bool null = tag == "tag:yaml.org,2002:null" ||
                          (!quoted && tag.empty() &&
                           IsPlainNull(reinterpret_cast<const char*>(s.value), s.length));
        const uint32_t index =
            add(null ? YamlNode::Kind::kNull : YamlNode::Kind::kScalar, s.anchor);
        if (!null) {
          nodes_[index].quoted = quoted;
          text_at[index] = static_cast<uint32_t>(text_.size());
          text_.insert(text_.end(), s.value, s.value + s.length);
          nodes_[index].children.size_ = static_cast<uint32_t>(s.length);
        }
        break;
      }
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        // add() first: it appends the new node to its parent's pending children.
        const bool seq = e.type == YAML_SEQUENCE_START_EVENT;
        const uint32_t index =
            add(seq ? YamlNode::Kind::kSeq : YamlNode::Kind::kMap,
                seq ? e.data.sequence_start.anchor : e.data.mapping_start.anchor);
        stack.emplace_back(index, pending.size());
        break;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        if (!stack.empty()) {
          const auto [index, from] = stack.back();
          stack.pop_back();
          children_at[index] = static_cast<uint32_t>(children_.size());
          nodes_[index].children.size_ = static_cast<uint32_t>(pending.size() - from);
          children_.insert(children_.end(), pending.begin() + static_cast<ptrdiff_t>(from),
                           pending.end());
          pending.resize(from);
        }
        break;
      case YAML_ALIAS_EVENT: {
        auto it = anchors.find(Str(e.data.alias.anchor));
        if (it == anchors.end()) {
          *error =
              absl::StrCat("line ", e.start_mark.line + 1, ", column ", e.start_mark.column + 1,
                           ": unknown anchor \"", std::string(Str(e.data.alias.anchor)), "\"");
          ok = false;
          break;
        }
        attach(it->second);
        break;
      }
      default:
        break;
    }
  }
  yaml_parser_delete(&parser);
  if (!ok) {
    nodes_.clear();
    documents_.clear();
    text_.clear();
    children_.clear();
    return false;
  }
  // Scalars keep their length in children.size_ until here (they have no children).
  for (size_t i = 0; i < nodes_.size(); ++i) {
    YamlNode& n = nodes_[i];
    if (n.kind == YamlNode::Kind::kScalar) {
      n.text = std::string_view(text_.data() + text_at[i], n.children.size_);
      n.children = YamlChildren();
    } else if (n.kind != YamlNode::Kind::kNull) {
      n.children.data_ = children_.data() + children_at[i];
    }
  }
  return true;
}

}  // namespace skiff::sources
