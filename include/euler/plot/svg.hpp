// euler/plot/svg.hpp: the drawing layer of euler's plots: an SVG canvas, text escaping, nice ticks,
// colours. No dependency beyond the standard library, so looking at a result needs no Python.
//
// The charts (line plot, heatmap, histogram) are in plot/charts.hpp and are what most code wants;
// this file is what they are drawn with, and what a new kind of chart would use:
//
//     euler::plot::Ticks t = euler::plot::nice_ticks(0.013, 0.87);  // 0, 0.2, ..., 1 (labels "0.0" .. "1.0")
//     euler::plot::Svg svg(400, 300);
//     svg.rect(0, 0, 400, 300, "#ffffff");
//     svg.text(200, 20, "R&D <draft>", {.size = 14, .anchor = "middle"});  // escaped for XML
//     svg.polyline({{10, 290}, {200, 50}, {390, 200}}, "#0072B2", 2);
//     euler::plot::write_svg("out/sketch.svg", svg.str());                  // atomically
//
// Robustness: every string that goes into the document is escaped (& < > " '), control characters
// are dropped and invalid UTF-8 becomes U+FFFD, so any title or series name (a file name, say) gives
// well-formed XML. Coordinates that are not finite are never written: the canvas skips the element.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "euler/io/atomic_file.hpp"

namespace euler::plot {

// ---- text -----------------------------------------------------------------------------------------

// `text` made safe for XML character data and attribute values: & < > " ' become entities, C0
// control characters other than tab become a space (XML 1.0 forbids them; tab and newline would be
// collapsed by SVG anyway), and bytes that are not valid UTF-8 (or encode U+FFFE, U+FFFF or a
// surrogate) become U+FFFD.
inline std::string xml_escape(std::string_view text) {
  static constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8
  std::string out;
  out.reserve(text.size() + 8);
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default: out += c < 0x20 ? ' ' : char(c);
      }
      ++i;
      continue;
    }
    // A multi-byte sequence: its length from the lead byte, then the continuation bytes.
    int length = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    if (c > 0xF4) length = 0;
    uint32_t code = length == 2 ? (c & 0x1Fu) : length == 3 ? (c & 0x0Fu) : (c & 0x07u);
    bool ok = length > 0 && i + size_t(length) <= text.size();
    for (int k = 1; ok && k < length; ++k) {
      unsigned char next = static_cast<unsigned char>(text[i + size_t(k)]);
      ok = (next & 0xC0u) == 0x80u;
      code = (code << 6) | (next & 0x3Fu);
    }
    // No overlong forms, no surrogates, nothing past U+10FFFF, no U+FFFE / U+FFFF.
    if (ok) ok = (length != 3 || code >= 0x800) && (length != 4 || (code >= 0x10000 && code <= 0x10FFFF)) &&
                 !(code >= 0xD800 && code <= 0xDFFF) && code != 0xFFFE && code != 0xFFFF;
    if (ok) {
      out.append(text.substr(i, size_t(length)));
      i += size_t(length);
    } else {
      out += kReplacement;
      ++i;  // resynchronise on the next byte
    }
  }
  return out;
}

// A coordinate or length for an attribute: two decimals, "-0.00" written as "0.00".
inline std::string coord(double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.2f", v);
  std::string s = buffer;
  if (s == "-0.00") s = "0.00";
  return s;
}

// ---- ticks ----------------------------------------------------------------------------------------

// Axis ticks: round values covering [lo, hi] (Heckbert, "Nice numbers for graph labels", 1990), with
// labels that all use the same number of decimals.
struct Ticks {
  double lo = 0, hi = 1;            // the axis range: the outer ticks, which enclose the data range
  double step = 0.2;                // 1, 2 or 5 times a power of ten
  std::vector<double> values;       // lo, lo + step, ..., hi
  std::vector<std::string> labels;  // values[i] formatted for display
};

// The nice number near x > 0: 1, 2, 5 or 10 times a power of ten; `round` picks the nearest one,
// otherwise the smallest one >= x.
inline double nice_number(double x, bool round) {
  double exponent = std::floor(std::log10(x));
  double power = std::pow(10.0, exponent);
  double f = x / power;
  double nice;
  if (round) nice = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else nice = f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10;  // 1e-9: 1.0000000000000002 is 1
  return nice * power;
}

// A tick value as a label, for ticks `step` apart: fixed-point with as many decimals as the step
// needs (step 0.2: "0.4"; step 5: "15"; step 0.005: "0.015"), scientific ("2e-6", "1.5e7") when the
// numbers are very small or very large.
inline std::string tick_label(double value, double step) {
  if (std::abs(value) < step * 1e-9) value = 0;  // no "-0" or 1e-17 from rounding
  double magnitude = std::max(std::abs(value), step);
  char buffer[64];
  if (step >= 1e-4 && magnitude < 1e6) {
    int decimals = std::max(0, int(-std::floor(std::log10(step) + 1e-9)));
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
    return buffer;
  }
  int digits = std::max(1, int(std::floor(std::log10(magnitude) + 1e-9) - std::floor(std::log10(step) + 1e-9)) + 1);
  std::snprintf(buffer, sizeof buffer, "%.*g", std::min(digits, 15), value);
  // "2e-06" -> "2e-6", "1.5e+07" -> "1.5e7"
  std::string s = buffer;
  size_t e = s.find('e');
  if (e == std::string::npos) return s;
  std::string mantissa = s.substr(0, e), exponent = s.substr(e + 1);
  bool negative = !exponent.empty() && exponent[0] == '-';
  if (!exponent.empty() && (exponent[0] == '-' || exponent[0] == '+')) exponent.erase(0, 1);
  while (exponent.size() > 1 && exponent[0] == '0') exponent.erase(0, 1);
  return mantissa + "e" + (negative ? "-" : "") + exponent;
}

// About `target` nice ticks (at least 2, at most 2 * target + 1) covering [lo, hi]. Works for any
// input: lo > hi is swapped, a range of zero width is widened around its value, and non-finite
// bounds give [0, 1]. With `integer`, the step is a whole number (at least 1), for indices and epochs.
inline Ticks nice_ticks(double lo, double hi, int target = 6, bool integer = false) {
  target = std::clamp(target, 2, 20);
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  constexpr double kLimit = 1e300;  // keeps hi - lo finite
  lo = std::clamp(lo, -kLimit, kLimit);
  hi = std::clamp(hi, -kLimit, kLimit);
  double scale = std::max(std::abs(lo), std::abs(hi));
  if (hi - lo <= scale * 1e-12) {  // constant data: show it mid-axis
    double pad = integer ? 1.0 : scale > 0 ? scale * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
  }
  Ticks t;
  double range = nice_number(hi - lo, false);
  t.step = nice_number(range / double(target - 1), true);
  if (integer) t.step = std::max(1.0, std::round(t.step));
  double first = std::floor(lo / t.step + 1e-9), last = std::ceil(hi / t.step - 1e-9);
  t.lo = first * t.step;
  t.hi = last * t.step;
  int64_t count = int64_t(std::llround(last - first));
  for (int64_t k = 0; k <= count; ++k) {
    double v = (first + double(k)) * t.step;  // from the integer, so no drift
    t.values.push_back(v);
    t.labels.push_back(tick_label(v, t.step));
  }
  return t;
}

// ---- colours --------------------------------------------------------------------------------------

// Colours for series i = 0, 1, ...: Okabe and Ito's palette, which colour-blind readers can tell apart.
inline std::string series_colour(size_t i) {
  static constexpr const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                             "#E69F00", "#56B4E9", "#000000", "#8C564B"};
  return kPalette[i % std::size(kPalette)];
}
// Dash pattern for series i: solid for the first round of colours, then dashed, then dotted.
inline std::string series_dash(size_t i) {
  static constexpr const char* kDashes[] = {"", "6 3", "2 2"};
  return kDashes[(i / 8) % std::size(kDashes)];
}

struct Rgb {
  double r, g, b;  // 0..255
};
inline std::string hex(Rgb c) {
  auto byte = [](double v) { return int(std::lround(std::clamp(v, 0.0, 255.0))); };
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", byte(c.r), byte(c.g), byte(c.b));
  return buffer;
}
// Piecewise-linear colour map through equally spaced anchors, at u in [0, 1] (clamped; NaN gives the
// first anchor).
template <size_t N>
Rgb interpolate(const Rgb (&anchors)[N], double u) {
  if (!(u >= 0)) u = 0;
  if (u > 1) u = 1;
  double position = u * double(N - 1);
  size_t i = std::min(size_t(position), N - 2);
  double f = position - double(i);
  const Rgb& a = anchors[i];
  const Rgb& b = anchors[i + 1];
  return {a.r + f * (b.r - a.r), a.g + f * (b.g - a.g), a.b + f * (b.b - a.b)};
}
// Sequential: viridis (perceptually uniform, readable in grey), for values such as attention weights.
inline std::string viridis(double u) {
  static constexpr Rgb kAnchors[] = {{68, 1, 84},    {71, 45, 123},  {59, 82, 139},   {44, 114, 142}, {33, 145, 140},
                                     {40, 174, 128}, {94, 201, 98},  {173, 220, 48},  {253, 231, 37}};
  return hex(interpolate(kAnchors, u));
}
// Diverging: blue (u = 0) through white (0.5) to red (1), for signed values such as gradients.
inline std::string diverging(double u) {
  static constexpr Rgb kAnchors[] = {{33, 102, 172}, {103, 169, 207}, {209, 229, 240}, {247, 247, 247},
                                     {253, 219, 199}, {239, 138, 98},  {178, 24, 43}};
  return hex(interpolate(kAnchors, u));
}

// ---- the canvas -----------------------------------------------------------------------------------

struct TextStyle {
  double size = 12;                  // font size in px
  const char* anchor = "start";      // start | middle | end
  double rotate = 0;                 // degrees, about the anchor point
  bool bold = false;
  const char* colour = "#222222";
  const char* baseline = "auto";     // auto (y is the baseline) | middle (y is the middle) | hanging (y is the top)
};

// Width of `text` in px at font size `size`, estimated (DejaVu Sans averages ~0.6 em per character);
// used only for layout (legend and margin widths).
inline double text_width(std::string_view text, double size) {
  size_t characters = 0;
  for (char c : text)
    if ((static_cast<unsigned char>(c) & 0xC0u) != 0x80u) ++characters;  // count UTF-8 code points
  return 0.6 * size * double(characters);
}

// An SVG document built element by element, in drawing order (later elements paint over earlier).
class Svg {
 public:
  Svg(double width, double height) : width_(width), height_(height) {}

  double width() const { return width_; }
  double height() const { return height_; }

  void rect(double x, double y, double w, double h, const std::string& fill, const std::string& stroke = "",
            double opacity = 1, double stroke_width = 1) {
    if (!finite({x, y, w, h}) || w < 0 || h < 0) return;
    body_ += "<rect x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" width=\"" + coord(w) + "\" height=\"" + coord(h) +
             "\" fill=\"" + (fill.empty() ? "none" : fill) + "\"";
    if (!stroke.empty()) body_ += " stroke=\"" + stroke + "\" stroke-width=\"" + coord(stroke_width) + "\"";
    if (opacity < 1) body_ += " fill-opacity=\"" + coord(opacity) + "\"";
    body_ += "/>\n";
  }

  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double stroke_width = 1,
            const std::string& dash = "") {
    if (!finite({x1, y1, x2, y2})) return;
    body_ += "<line x1=\"" + coord(x1) + "\" y1=\"" + coord(y1) + "\" x2=\"" + coord(x2) + "\" y2=\"" + coord(y2) +
             "\" stroke=\"" + stroke + "\" stroke-width=\"" + coord(stroke_width) + "\"" + dash_attribute(dash) + "/>\n";
  }

  // An open path through the points; points with a non-finite coordinate are left out.
  void polyline(const std::vector<std::pair<double, double>>& points, const std::string& stroke, double stroke_width = 1.5,
                const std::string& dash = "") {
    std::string list;
    for (const auto& [x, y] : points)
      if (finite({x, y})) list += (list.empty() ? "" : " ") + coord(x) + "," + coord(y);
    if (list.empty()) return;
    body_ += "<polyline points=\"" + list + "\" fill=\"none\" stroke=\"" + stroke + "\" stroke-width=\"" +
             coord(stroke_width) + "\" stroke-linejoin=\"round\"" + dash_attribute(dash) + "/>\n";
  }

  // A closed, filled polygon (histogram bars).
  void polygon(const std::vector<std::pair<double, double>>& points, const std::string& fill, double fill_opacity,
               const std::string& stroke, double stroke_width = 1.5) {
    std::string list;
    for (const auto& [x, y] : points)
      if (finite({x, y})) list += (list.empty() ? "" : " ") + coord(x) + "," + coord(y);
    if (list.empty()) return;
    body_ += "<polygon points=\"" + list + "\" fill=\"" + fill + "\" fill-opacity=\"" + coord(fill_opacity) +
             "\" stroke=\"" + stroke + "\" stroke-width=\"" + coord(stroke_width) + "\" stroke-linejoin=\"round\"/>\n";
  }

  void circle(double cx, double cy, double r, const std::string& fill) {
    if (!finite({cx, cy, r})) return;
    body_ += "<circle cx=\"" + coord(cx) + "\" cy=\"" + coord(cy) + "\" r=\"" + coord(r) + "\" fill=\"" + fill + "\"/>\n";
  }

  void text(double x, double y, std::string_view content, const TextStyle& style = {}) {
    if (!finite({x, y})) return;
    body_ += "<text x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" font-size=\"" + coord(style.size) +
             "\" text-anchor=\"" + style.anchor + "\" fill=\"" + style.colour + "\"";
    // Vertical alignment as a shift in em (in the text's own frame, so it also holds when rotated):
    // portable, where dominant-baseline is not honoured by every renderer.
    std::string_view baseline = style.baseline;
    if (baseline == "middle") body_ += " dy=\"0.35em\"";
    if (baseline == "hanging") body_ += " dy=\"0.8em\"";
    if (style.bold) body_ += " font-weight=\"bold\"";
    if (style.rotate != 0)
      body_ += " transform=\"rotate(" + coord(style.rotate) + " " + coord(x) + " " + coord(y) + ")\"";
    body_ += ">" + xml_escape(content) + "</text>\n";
  }

  // Later elements are clipped to the rectangle until end_clip(); one clip region per document.
  void begin_clip(double x, double y, double w, double h) {
    defs_ = "<defs><clipPath id=\"plot-area\"><rect x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" width=\"" + coord(w) +
            "\" height=\"" + coord(h) + "\"/></clipPath></defs>\n";
    body_ += "<g clip-path=\"url(#plot-area)\">\n";
  }
  void end_clip() { body_ += "</g>\n"; }

  // Start and end a group with crisp edges (heatmap cells, so neighbours show no hairline seams).
  void begin_crisp() { body_ += "<g shape-rendering=\"crispEdges\">\n"; }
  void end_group() { body_ += "</g>\n"; }

  std::string str() const {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
           coord(width_) + "\" height=\"" + coord(height_) + "\" viewBox=\"0 0 " + coord(width_) + " " + coord(height_) +
           "\" font-family=\"DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif\">\n" + defs_ + body_ + "</svg>\n";
  }

 private:
  static bool finite(std::initializer_list<double> values) {
    return std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
  }
  static std::string dash_attribute(const std::string& dash) {
    return dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"";
  }

  double width_, height_;
  std::string defs_, body_;
};

// Write an SVG document (or any text) to `path` atomically; IoError names the file on failure.
inline void write_svg(const std::string& path, const std::string& document) { write_file_atomically(path, document); }

}  // namespace euler::plot
