#include <tunnel/control_format.hpp>

namespace tunnel::control {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Length of the valid UTF-8 sequence starting at p[0] (at most n bytes), or
// 0 when it is not one (overlong forms, surrogates and values past U+10FFFF
// included).
std::size_t utf8_len(const std::uint8_t* p, std::size_t n) noexcept {
  const std::uint8_t b = p[0];
  std::size_t len;
  std::uint32_t cp, min;
  if (b < 0x80) return 1;
  if ((b & 0xe0) == 0xc0) len = 2, cp = b & 0x1f, min = 0x80;
  else if ((b & 0xf0) == 0xe0) len = 3, cp = b & 0x0f, min = 0x800;
  else if ((b & 0xf8) == 0xf0) len = 4, cp = b & 0x07, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

std::string exit_text(std::int16_t e) { return e == kNoExit ? std::string("-") : std::to_string(e); }

}  // namespace

std::string escape_line(std::span<const std::uint8_t> body) {
  std::string o;
  o.reserve(body.size());
  for (std::uint8_t c : body) {
    switch (c) {
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          o += "\\x";
          o += kHex[c >> 4];
          o += kHex[c & 0xf];
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o;
}

std::string json_string(std::span<const std::uint8_t> body) {
  std::string o = "\"";
  o.reserve(body.size() + 2);
  for (std::size_t i = 0; i < body.size();) {
    const std::uint8_t c = body[i];
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
      ++i;
    } else if (c == '\n') {
      o += "\\n";
      ++i;
    } else if (c < 0x20) {
      o += "\\u00";
      o += kHex[c >> 4];
      o += kHex[c & 0xf];
      ++i;
    } else if (const std::size_t n = utf8_len(&body[i], body.size() - i); n > 0) {
      o.append(reinterpret_cast<const char*>(&body[i]), n);
      i += n;
    } else {
      o += "\xef\xbf\xbd";  // U+FFFD
      ++i;
    }
  }
  o += '"';
  return o;
}

std::string format_lines(const SentMessage& m) {
  std::string o;
  for (const TargetResult& t : m.targets) {
    o += t.peer;
    o += ' ';
    o += to_string(t.status);
    o += ' ';
    o += exit_text(t.exit_code);
    if (!t.body.empty()) {
      o += ' ';
      o += escape_line(t.body);
    }
    o += '\n';
  }
  return o;
}

std::string format_json(const SentMessage& m) {
  const std::string id = json_string(bytes(format_msg_id(m.msg_id)));
  std::string o = "[";
  for (const TargetResult& t : m.targets) {
    if (o.size() > 1) o += ',';
    o += "{\"peer\":" + json_string(bytes(t.peer));
    o += ",\"msg_id\":" + id;
    o += ",\"status\":\"" + std::string(to_string(t.status)) + '"';
    o += ",\"exit\":" + (t.exit_code == kNoExit ? std::string("null") : std::to_string(t.exit_code));
    o += ",\"result\":" + json_string(t.body);
    o += ",\"truncated\":";
    o += t.truncated ? "true" : "false";
    o += '}';
  }
  o += ']';
  return o;
}

int exit_code_for(std::span<const TargetResult> targets) noexcept {
  if (targets.empty()) return 1;
  for (const TargetResult& t : targets)
    if (t.status != TargetStatus::done || t.exit_code != 0) return 1;
  return 0;
}

}  // namespace tunnel::control
