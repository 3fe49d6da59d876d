// A small XML well-formedness check for the tests of euler's SVG output: tags nest and close, attribute
// values are quoted and unique per element, every & starts a known entity, there is one root element
// and no text outside it, and the text is valid UTF-8. (Not a full XML parser: no DTDs or CDATA,
// which euler never writes.)
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace euler_test {

namespace xml_detail {
inline bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':' || c == '-' || c == '.'; }

// Length of the entity reference at text[0] == '&', or 0 when it is not a valid one.
inline size_t entity_length(std::string_view text) {
  for (std::string_view e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
    if (text.substr(0, e.size()) == e) return e.size();
  if (text.substr(0, 2) == "&#") {
    size_t i = 2;
    bool hex = i < text.size() && text[i] == 'x';
    if (hex) ++i;
    size_t digits = 0;
    while (i < text.size() && (hex ? std::isxdigit(static_cast<unsigned char>(text[i])) : std::isdigit(static_cast<unsigned char>(text[i]))))
      ++i, ++digits;
    if (digits > 0 && i < text.size() && text[i] == ';') return i + 1;
  }
  return 0;
}

inline bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}
}  // namespace xml_detail

// "" when `doc` is well-formed, else what is wrong and at which byte.
inline std::string xml_problem(std::string_view doc) {
  using namespace xml_detail;
  if (!valid_utf8(doc)) return "not valid UTF-8";
  std::vector<std::string> open;
  int roots = 0;
  size_t i = 0;
  auto at = [&](const std::string& what) { return what + " at byte " + std::to_string(i); };
  if (doc.substr(0, 5) == "<?xml") {
    size_t end = doc.find("?>");
    if (end == std::string_view::npos) return "unterminated XML declaration";
    i = end + 2;
  }
  while (i < doc.size()) {
    char c = doc[i];
    if (c == '<') {
      if (doc.substr(i, 4) == "<!--") {
        size_t end = doc.find("-->", i + 4);
        if (end == std::string_view::npos) return at("unterminated comment");
        i = end + 3;
        continue;
      }
      bool closing = i + 1 < doc.size() && doc[i + 1] == '/';
      size_t j = i + 1 + (closing ? 1 : 0);
      size_t name_start = j;
      while (j < doc.size() && name_char(doc[j])) ++j;
      std::string name(doc.substr(name_start, j - name_start));
      if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return at("bad tag name");
      if (closing) {
        while (j < doc.size() && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
        if (j >= doc.size() || doc[j] != '>') return at("bad closing tag </" + name);
        if (open.empty() || open.back() != name) return at("</" + name + "> does not close <" + (open.empty() ? "" : open.back()) + ">");
        open.pop_back();
        i = j + 1;
        continue;
      }
      std::vector<std::string> attributes;
      bool self_closing = false;
      for (;;) {
        size_t before = j;
        while (j < doc.size() && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
        if (j >= doc.size()) return at("unterminated tag <" + name);
        if (doc.substr(j, 2) == "/>") {
          self_closing = true;
          j += 2;
          break;
        }
        if (doc[j] == '>') {
          ++j;
          break;
        }
        if (j == before) return at("no space before an attribute of <" + name);
        size_t a = j;
        while (j < doc.size() && name_char(doc[j])) ++j;
        std::string attribute(doc.substr(a, j - a));
        if (attribute.empty()) return at("bad attribute in <" + name);
        for (const std::string& seen : attributes)
          if (seen == attribute) return at("duplicate attribute " + attribute + " in <" + name);
        attributes.push_back(attribute);
        if (j >= doc.size() || doc[j] != '=') return at("attribute " + attribute + " without a value");
        ++j;
        if (j >= doc.size() || (doc[j] != '"' && doc[j] != '\'')) return at("unquoted value of " + attribute);
        char quote = doc[j++];
        while (j < doc.size() && doc[j] != quote) {
          if (doc[j] == '<') return at("'<' in the value of " + attribute);
          if (doc[j] == '&') {
            size_t n = entity_length(doc.substr(j));
            if (n == 0) return at("bad entity in the value of " + attribute);
            j += n;
          } else {
            ++j;
          }
        }
        if (j >= doc.size()) return at("unterminated value of " + attribute);
        ++j;
      }
      if (open.empty()) ++roots;
      if (roots > 1) return at("a second root element <" + name);
      if (!self_closing) open.push_back(name);
      i = j;
      continue;
    }
    if (c == '&') {
      size_t n = entity_length(doc.substr(i));
      if (n == 0) return at("bad entity");
      i += n;
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\r' && c != '\t') return at("control character");
    if (open.empty() && !std::isspace(static_cast<unsigned char>(c))) return at("text outside the root element");
    ++i;
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  if (roots != 1) return "no root element";
  return "";
}

// How often `needle` occurs in `text`.
inline size_t count_of(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

}  // namespace euler_test
