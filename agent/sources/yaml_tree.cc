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
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) {
    *error = "out of memory";
    return false;
  }
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());
  std::vector<uint32_t> stack;                           // open collections
  std::map<std::string, uint32_t, std::less<>> anchors;  // per document
  bool ok = true;
  // Attaches a finished (or just opened) node to its parent, or makes it a document root.
  auto attach = [&](uint32_t index) {
    if (stack.empty()) {
      documents_.push_back(index);
    } else {
      nodes_[stack.back()].children.push_back(index);
    }
  };
  auto add = [&](YamlNode::Kind kind, const yaml_char_t* anchor) -> uint32_t {
    const auto index = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back().kind = kind;
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
          nodes_[index].text.assign(reinterpret_cast<const char*>(s.value), s.length);
        }
        break;
      }
      case YAML_SEQUENCE_START_EVENT:
        stack.push_back(add(YamlNode::Kind::kSeq, e.data.sequence_start.anchor));
        break;
      case YAML_MAPPING_START_EVENT:
        stack.push_back(add(YamlNode::Kind::kMap, e.data.mapping_start.anchor));
        break;
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        if (!stack.empty()) stack.pop_back();
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
  }
  return ok;
}

}  // namespace skiff::sources
