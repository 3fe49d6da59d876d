// euler/plot/plane.hpp: complex numbers as arrows in the plane, to show what a rotation does to one
// complex channel of a query and a key (docs/guide.md section 3 draws its pictures with it).
//
//     using C = std::complex<double>;
//     euler::plot::PlanePlot p;
//     p.title = "a query, turned by 1.5 rad";
//     p.arrows.push_back({"q", std::polar(0.9, 0.4), 0, /*dashed=*/true});
//     p.arrows.push_back({"q e^{1.5i}", std::polar(0.9, 0.4 + 1.5), 0});
//     p.arcs.push_back({"1.5 rad", 0.4, 0.4 + 1.5, 0.35, 0});
//     euler::plot::write_svg("rotation.svg", p.svg());
//
// The axes are Re (right) and Im (up) on one scale, so angles look like angles; the unit circle is
// drawn for reference. Arrows with a tip that is not finite are left out and counted in a note.
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <string>
#include <vector>

#include "euler/plot/svg.hpp"

namespace euler::plot {

struct Arrow {
  std::string label;          // written just beyond the tip ("" for none)
  std::complex<double> tip;   // the arrow goes from 0 to here
  size_t colour = 0;          // series_colour(colour): the same colour for a vector and its rotated self
  bool dashed = false;        // e.g. the vector before it was rotated
};

// An arc around the origin at `radius`, counter-clockwise from angle `from` to `to` (radians; `to` <
// `from` runs clockwise), with its label beside the middle: an angle between two arrows, or a rotation.
struct Arc {
  std::string label;
  double from = 0, to = 0, radius = 0.3;
  size_t colour = 0;
};

struct PlanePlot {
  std::string title;
  std::string caption;              // one line under the picture: what it shows
  std::vector<Arrow> arrows;
  std::vector<Arc> arcs;
  bool mark_negative_real = false;  // highlight the negative real axis, where atan2 jumps from +pi to -pi
  double size = 420;                // px, the square drawing area

  std::string svg() const {
    // One scale for both axes: the unit circle and every finite tip and arc fit, with a margin.
    double extent = 1;
    int left_out = 0;
    for (const Arrow& a : arrows) {
      if (std::isfinite(a.tip.real()) && std::isfinite(a.tip.imag())) extent = std::max(extent, std::abs(a.tip));
      else ++left_out;
    }
    for (const Arc& arc : arcs)
      if (std::isfinite(arc.radius)) extent = std::max(extent, std::abs(arc.radius));
    if (!std::isfinite(extent) || extent > 1e12) extent = 1e12;
    std::string footer = caption;
    if (left_out > 0) footer += (footer.empty() ? "" : " ") + std::string("(") + std::to_string(left_out) +
                                (left_out == 1 ? " arrow" : " arrows") + " with a non-finite tip left out)";
    const std::string axis_note = "red dashes: the negative real axis, where arg jumps from +pi (above) to -pi (below)";

    const double pad = 70, top = title.empty() ? 20 : 44;
    const double bottom = (footer.empty() ? 20 : 44) + (mark_negative_real ? 20 : 0);
    const double width = std::ceil(std::max({size + 2 * pad, 1.15 * text_width(title, 15) + 40, text_width(footer, 12) + 40,
                                             mark_negative_real ? text_width(axis_note, 12) + 40 : 0.0}));
    Svg svg(width, std::ceil(top + size + bottom));  // whole pixels: a PNG of the SVG's size
    svg.rect(0, 0, svg.width(), svg.height(), "#ffffff");
    if (!title.empty()) svg.text(svg.width() / 2, 26, title, {.size = 15, .anchor = "middle", .bold = true});
    const double scale = size / (2 * 1.15 * extent), cx = svg.width() / 2, cy = top + size / 2;
    auto px = [&](std::complex<double> z) { return std::pair{cx + scale * z.real(), cy - scale * z.imag()}; };

    // The axes, the unit circle, and the negative real axis if asked.
    const double reach = 1.12 * extent * scale;
    svg.line(cx - reach, cy, cx + reach, cy, "#999999");
    svg.line(cx, cy - reach, cx, cy + reach, "#999999");
    svg.text(cx + reach + 4, cy, "Re", {.size = 12, .colour = "#666666", .baseline = "middle"});
    svg.text(cx, cy - reach - 6, "Im", {.size = 12, .anchor = "middle", .colour = "#666666"});
    std::vector<std::pair<double, double>> circle;
    for (int k = 0; k <= 128; ++k) circle.push_back(px(std::polar(1.0, 2 * std::numbers::pi * k / 128)));
    svg.polyline(circle, "#bbbbbb", 1, "4 3");
    svg.text(px(std::polar(1.0, -std::numbers::pi / 4)).first + 4, px(std::polar(1.0, -std::numbers::pi / 4)).second + 4,
             "|z| = 1", {.size = 11, .colour = "#888888", .baseline = "hanging"});
    if (mark_negative_real) svg.line(cx, cy, cx - reach, cy, "#D55E00", 3, "6 3");  // explained under the picture

    for (const Arc& arc : arcs) {
      if (!std::isfinite(arc.from) || !std::isfinite(arc.to) || !std::isfinite(arc.radius)) continue;
      std::vector<std::pair<double, double>> points;
      for (int k = 0; k <= 64; ++k) points.push_back(px(std::polar(arc.radius, arc.from + (arc.to - arc.from) * k / 64)));
      svg.polyline(points, series_colour(arc.colour), 1.5);
      auto [lx, ly] = px(std::polar(arc.radius + 0.08 * extent, (arc.from + arc.to) / 2));
      svg.text(lx, ly, arc.label, {.size = 12, .anchor = "middle", .colour = "#333333", .baseline = "middle"});
    }

    for (const Arrow& a : arrows) {
      if (!std::isfinite(a.tip.real()) || !std::isfinite(a.tip.imag())) continue;
      auto [x, y] = px(a.tip);
      const std::string colour = series_colour(a.colour);
      double length = std::hypot(x - cx, y - cy);
      if (length > 1e-9) {  // a shaft that stops at the head's base, then the head
        double ux = (x - cx) / length, uy = (y - cy) / length, head = std::min(12.0, 0.4 * length);
        svg.line(cx, cy, x - ux * head, y - uy * head, colour, 2.2, a.dashed ? "6 4" : "");
        svg.polygon({{x, y}, {x - ux * head - uy * head * 0.45, y - uy * head + ux * head * 0.45},
                     {x - ux * head + uy * head * 0.45, y - uy * head - ux * head * 0.45}},
                    colour, a.dashed ? 0.45 : 1, colour, 1);
      } else {
        svg.circle(x, y, 3, colour);  // the zero vector: a dot at the origin
      }
      if (!a.label.empty()) {
        double angle = std::arg(a.tip), lx = x + 14 * std::cos(angle), ly = y - 14 * std::sin(angle);
        const char* anchor = std::cos(angle) > 0.3 ? "start" : std::cos(angle) < -0.3 ? "end" : "middle";
        svg.text(lx, ly, a.label, {.size = 13, .anchor = anchor, .colour = colour.c_str(), .baseline = "middle"});
      }
    }
    double line_y = top + size + 28;
    if (!footer.empty()) {
      svg.text(svg.width() / 2, line_y, footer, {.size = 12, .anchor = "middle", .colour = "#333333"});
      line_y += 20;
    }
    if (mark_negative_real) svg.text(svg.width() / 2, line_y, axis_note, {.size = 12, .anchor = "middle", .colour = "#D55E00"});
    return svg.str();
  }
};

}  // namespace euler::plot
