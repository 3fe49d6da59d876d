// euler/plot/charts.hpp: line plots, heatmaps and histograms as SVG, with axes, nice ticks, labels,
// a title, and a legend or colour bar. Enough to look at training curves, attention maps and phase
// distributions without any plotting package.
//
//     euler::plot::LinePlot p;
//     p.title = "training loss";  p.x_label = "epoch";  p.y_label = "loss";  p.integer_x = true;
//     p.series.push_back({"cross-entropy", {1, 2, 3}, {5.1, 4.2, 3.9}});
//     euler::plot::write_svg("curves/loss.svg", p.svg());
//
//     p.log_y = true;                       // for magnitudes that span decades (gradients)
//
//     euler::plot::Heatmap h;               // attention of one head: rows are queries, columns keys
//     h.rows = N;  h.cols = N;  h.values = {...};  h.x_label = "key position";  h.y_label = "query position";
//
//     euler::plot::Histogram g;             // several distributions on common bins
//     g.series = {{"with contrastive loss", phases_a}, {"without", phases_b}};
//     g.range = {{-M_PI, M_PI}};  g.normalize = true;
//
// Data may hold NaN or infinity: a line plot breaks its line there, a heatmap paints the cell grey
// (and says so beside the colour bar), a histogram leaves the value out (and says how many). Axis
// ranges come from the finite values only; with none at all the chart still draws, with a note.
// Mismatched sizes (x and y of a series, rows * cols of a heatmap) are std::invalid_argument.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <string>
#include <utility>
#include <vector>

#include "euler/plot/svg.hpp"

namespace euler::plot {

// The plot area inside the document, in px.
struct Area {
  double x = 0, y = 0, w = 0, h = 0;
  double right() const { return x + w; }
  double bottom() const { return y + h; }
};

// Position of value v on an axis with ticks t, drawn from `start` over `length` px (flipped for y,
// where larger values are higher up).
inline double axis_px(double v, const Ticks& t, double start, double length, bool flip) {
  double u = (v - t.lo) / (t.hi - t.lo);
  return flip ? start + length * (1 - u) : start + length * u;
}

// The finite minimum and maximum of some values; empty() when none was finite.
struct Extent {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

namespace charts_detail {

constexpr double kTickFont = 11, kLabelFont = 12.5, kTitleFont = 15;

// The widest tick label of an axis, in px.
inline double widest(const Ticks& t) {
  double w = 0;
  for (const std::string& label : t.labels) w = std::max(w, text_width(label, kTickFont));
  return w;
}

// White background, title, grid lines, the frame, ticks with labels and the axis labels.
inline void draw_axes(Svg& svg, const Area& a, const Ticks& xt, const Ticks& yt, const std::string& title,
                      const std::string& x_label, const std::string& y_label, bool grid = true) {
  svg.text(svg.width() / 2, 24, title, {.size = kTitleFont, .anchor = "middle", .bold = true});
  for (size_t i = 0; i < xt.values.size(); ++i) {
    double x = axis_px(xt.values[i], xt, a.x, a.w, false);
    if (grid) svg.line(x, a.y, x, a.bottom(), "#e6e6e6");
    svg.line(x, a.bottom(), x, a.bottom() + 5, "#444444");
    svg.text(x, a.bottom() + 18, xt.labels[i], {.size = kTickFont, .anchor = "middle", .colour = "#444444"});
  }
  for (size_t i = 0; i < yt.values.size(); ++i) {
    double y = axis_px(yt.values[i], yt, a.y, a.h, true);
    if (grid) svg.line(a.x, y, a.right(), y, "#e6e6e6");
    svg.line(a.x - 5, y, a.x, y, "#444444");
    svg.text(a.x - 8, y, yt.labels[i], {.size = kTickFont, .anchor = "end", .colour = "#444444", .baseline = "middle"});
  }
  svg.rect(a.x, a.y, a.w, a.h, "", "#444444");
  svg.text(a.x + a.w / 2, a.bottom() + 40, x_label, {.size = kLabelFont, .anchor = "middle"});
  svg.text(16, a.y + a.h / 2, y_label,
           {.size = kLabelFont, .anchor = "middle", .rotate = -90, .baseline = "hanging"});
}

// A legend to the right of the plot area: a swatch (line or box) and the name of each entry.
struct LegendEntry {
  std::string name, colour, dash;
  bool box = false;  // a filled box (histograms) instead of a line
};
inline double legend_width(const std::vector<LegendEntry>& entries) {
  double w = 0;
  for (const LegendEntry& e : entries) w = std::max(w, text_width(e.name, kTickFont));
  return entries.empty() ? 0 : w + 44;
}
inline void draw_legend(Svg& svg, double x, double y, const std::vector<LegendEntry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    const LegendEntry& e = entries[i];
    double row = y + 8 + 18 * double(i);
    if (e.box) svg.rect(x, row - 5, 22, 10, e.colour, e.colour, 0.35);
    else svg.line(x, row, x + 22, row, e.colour, 2.5, e.dash);
    svg.text(x + 28, row, e.name, {.size = kTickFont, .baseline = "middle"});
  }
}

inline void note(Svg& svg, const Area& a, const std::string& message) {
  svg.text(a.x + a.w / 2, a.y + a.h / 2, message, {.size = kLabelFont, .anchor = "middle", .colour = "#888888"});
}

}  // namespace charts_detail

// ---- line plot ------------------------------------------------------------------------------------

struct Series {
  std::string name;           // in the legend ("" leaves it out)
  std::vector<double> x, y;   // same length; a non-finite x or y breaks the line there
};

// A dashed vertical line across the plot at x, labelled at the top (e.g. "best epoch").
struct Marker {
  double x = 0;
  std::string label;
};

struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::vector<Marker> markers;
  bool integer_x = false;  // whole-number x ticks (epochs, distances)
  bool log_y = false;      // logarithmic y axis, ticks at powers of ten; values <= 0 are left out like NaN
  double width = 760, height = 440;

  std::string svg() const {
    using namespace charts_detail;
    // With log_y every y is drawn as log10(y); the ticks are whole exponents, labelled as powers of ten.
    std::vector<Series> drawn = series;
    if (log_y)
      for (Series& s : drawn)
        for (double& y : s.y) y = y > 0 ? std::log10(y) : std::nan("");
    Extent ex, ey;
    std::vector<LegendEntry> legend;
    for (size_t i = 0; i < drawn.size(); ++i) {
      const Series& s = drawn[i];
      if (s.x.size() != s.y.size())
        throw std::invalid_argument("LinePlot '" + title + "': series '" + s.name + "' has " + std::to_string(s.x.size()) +
                                    " x values but " + std::to_string(s.y.size()) + " y values");
      for (size_t k = 0; k < s.x.size(); ++k)
        if (std::isfinite(s.x[k]) && std::isfinite(s.y[k])) ex.add(s.x[k]), ey.add(s.y[k]);
      if (!s.name.empty()) legend.push_back({s.name, series_colour(i), series_dash(i)});
    }
    for (const Marker& m : markers) ex.add(m.x);
    bool no_data = ey.empty();
    Ticks xt = ex.empty() ? nice_ticks(0, 1, 6, integer_x) : nice_ticks(ex.lo, ex.hi, 7, integer_x);
    Ticks yt = no_data ? nice_ticks(0, 1) : nice_ticks(ey.lo, ey.hi, 6);
    if (log_y) {  // a tick per decade (up to 10 decades; beyond, nice whole steps)
      double lo = no_data ? 0 : std::floor(ey.lo), hi = no_data ? 1 : std::max(std::ceil(ey.hi), lo + 1);
      if (hi - lo <= 10) {
        yt = Ticks{lo, hi, 1, {}, {}};
        for (double k = lo; k <= hi; ++k) yt.values.push_back(k), yt.labels.push_back("");
      } else {
        yt = nice_ticks(lo, hi, 6, true);
      }
      for (size_t i = 0; i < yt.values.size(); ++i) yt.labels[i] = power_of_ten_label(yt.values[i]);
    }

    Svg svg(width, height);
    svg.rect(0, 0, width, height, "#ffffff");
    double legend_w = std::min(legend_width(legend), 0.45 * width);  // very long names run off the edge, the plot stays
    Area a;
    a.x = 44 + widest(yt);
    a.y = 42;
    a.w = width - a.x - 20 - legend_w;
    a.h = height - a.y - 56;
    draw_axes(svg, a, xt, yt, title, x_label, y_label);
    svg.begin_clip(a.x, a.y, a.w, a.h);
    for (const Marker& m : markers) {
      double x = axis_px(m.x, xt, a.x, a.w, false);
      svg.line(x, a.y, x, a.bottom(), "#777777", 1.2, "5 4");
      bool right_half = x > a.x + 0.6 * a.w;  // label on the side with room
      svg.text(right_half ? x - 4 : x + 4, a.y + 14, m.label,
               {.size = kTickFont, .anchor = right_half ? "end" : "start", .colour = "#555555"});
    }
    std::vector<std::pair<std::pair<double, double>, std::string>> dots;
    for (size_t i = 0; i < drawn.size(); ++i) draw_series(svg, a, xt, yt, drawn[i], i, dots);
    svg.end_clip();
    for (const auto& [at, colour] : dots) svg.circle(at.first, at.second, 2.8, colour);  // unclipped: whole at the edges
    if (no_data) note(svg, a, log_y ? "no finite positive data" : "no finite data");
    draw_legend(svg, a.right() + 14, a.y, legend);
    return svg.str();
  }

  // 10^k as a label: "0.01", "1", "1000" for |k| <= 3, else "1e-6", "1e7".
  static std::string power_of_ten_label(double k) {
    int e = int(std::lround(k));
    if (e >= 0 && e <= 3) return std::to_string(int(std::lround(std::pow(10.0, e))));
    if (e < 0 && e >= -3) return "0." + std::string(size_t(-e - 1), '0') + "1";
    return "1e" + std::to_string(e);
  }

 private:
  // The finite runs of a series as polylines; dots (added to `dots`, drawn by the caller) at the
  // points when there are few, and always for a run of one point (which a line alone would not show).
  static void draw_series(Svg& svg, const Area& a, const Ticks& xt, const Ticks& yt, const Series& s, size_t i,
                          std::vector<std::pair<std::pair<double, double>, std::string>>& dots) {
    std::string colour = series_colour(i), dash = series_dash(i);
    bool few = s.x.size() <= 60;
    std::vector<std::pair<double, double>> run;
    auto flush = [&]() {
      if (run.size() > 1) svg.polyline(run, colour, 2, dash);
      if (few || run.size() == 1)
        for (const auto& point : run) dots.emplace_back(point, colour);
      run.clear();
    };
    for (size_t k = 0; k < s.x.size(); ++k) {
      if (!std::isfinite(s.x[k]) || !std::isfinite(s.y[k])) {
        flush();
        continue;
      }
      run.emplace_back(axis_px(s.x[k], xt, a.x, a.w, false), axis_px(s.y[k], yt, a.y, a.h, true));
    }
    flush();
  }
};

// ---- heatmap --------------------------------------------------------------------------------------

// The q_lo and q_hi quantiles of the finite values (nearest rank); with `symmetric`, -m .. m for m
// the q_hi quantile of |value| (signed data around 0). {0, 1} when no value is finite.
inline std::pair<double, double> percentile_range(const std::vector<double>& values, double q_lo, double q_hi, bool symmetric) {
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(symmetric ? std::abs(x) : x);
  if (v.empty()) return {0.0, 1.0};
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[size_t(std::clamp(q, 0.0, 1.0) * double(v.size() - 1) + 0.5)]; };
  if (symmetric) return {-at(q_hi), at(q_hi)};
  return {at(q_lo), at(q_hi)};
}

struct Heatmap {
  std::string title, x_label, y_label, value_label;  // value_label: beside the colour bar
  int64_t rows = 0, cols = 0;
  std::vector<double> values;  // [rows, cols], row-major; row 0 is drawn at the top (matrix layout)
  bool diverging = false;      // blue-white-red, symmetric about 0 (signed data); otherwise viridis
  std::optional<std::pair<double, double>> range;  // colour range; default: nice bounds of the data
  bool robust = false;         // default range from the 2nd and 98th percentiles (a few extreme cells
                               // no longer wash out the rest; cells beyond take the end colours)
  bool mark_diagonal = false;  // a dashed line through the cells (i, i): query = key in an attention map
  std::string caption;         // one line under the picture: what it shows
  double width = 640, height = 560;

  std::string svg() const {
    using namespace charts_detail;
    if (rows < 0 || cols < 0 || int64_t(values.size()) != rows * cols)
      throw std::invalid_argument("Heatmap '" + title + "': " + std::to_string(values.size()) + " values for " +
                                  std::to_string(rows) + " x " + std::to_string(cols) + " cells");
    const auto [lo, hi] = colour_range();
    Ticks ct = nice_ticks(lo, hi, 6), xt = index_ticks(cols), yt = index_ticks(rows);

    Svg svg(width, height);
    svg.rect(0, 0, width, height, "#ffffff");
    double bar_w = 16, colour_labels = widest(ct) + 12, value_label_w = value_label.empty() ? 0 : 24;
    Area a;
    a.x = 44 + widest(yt);
    a.y = 42;
    a.w = width - a.x - 28 - bar_w - colour_labels - value_label_w;
    a.h = height - a.y - (caption.empty() ? 56 : 78);
    svg.text(width / 2, 24, title, {.size = kTitleFont, .anchor = "middle", .bold = true});
    draw_cells(svg, a, lo, hi);
    draw_index_axes(svg, a, xt, yt);
    draw_colour_bar(svg, a, bar_w, ct, lo, hi);
    return svg.str();
  }

 private:
  // The colour range [lo, hi]: the given one, or nice bounds of the data (robust: of its 2nd and 98th
  // percentiles; diverging: symmetric about 0).
  std::pair<double, double> colour_range() const {
    using namespace charts_detail;
    Extent e;
    for (double v : values) e.add(v);
    double lo = 0, hi = 1;
    if (range) {
      lo = range->first, hi = range->second;
    } else if (robust && !e.empty()) {
      std::tie(lo, hi) = percentile_range(values, 0.02, 0.98, diverging);
      Ticks nice = nice_ticks(lo, hi, 6);
      lo = nice.lo, hi = nice.hi;
    } else if (!e.empty()) {
      if (diverging) {
        double m = std::max(std::abs(e.lo), std::abs(e.hi));
        lo = -m, hi = m;
      } else {
        lo = e.lo, hi = e.hi;
      }
      Ticks nice = nice_ticks(lo, hi, 6);
      lo = nice.lo, hi = nice.hi;
    }
    if (!(lo < hi)) hi = lo + 1;  // a given empty range, or a NaN bound
    return {lo, hi};
  }

  // Index ticks at cell centres: nice whole numbers inside 0 .. n-1.
  static Ticks index_ticks(int64_t n) {
    Ticks t = nice_ticks(0, double(std::max<int64_t>(n - 1, 0)), 6, true);
    Ticks inside = t;
    inside.values.clear();
    inside.labels.clear();
    for (size_t i = 0; i < t.values.size(); ++i)
      if (t.values[i] >= 0 && t.values[i] <= double(n - 1)) inside.values.push_back(t.values[i]), inside.labels.push_back(t.labels[i]);
    return inside;
  }

  std::string colour_of(double v, double lo, double hi) const {
    if (!std::isfinite(v)) return "#bdbdbd";
    double u = (v - lo) / (hi - lo);
    return diverging ? plot::diverging(u) : viridis(u);
  }

  // The cells, the dashed diagonal when asked, the frame and the caption.
  void draw_cells(Svg& svg, const Area& a, double lo, double hi) const {
    using namespace charts_detail;
    double cw = cols > 0 ? a.w / double(cols) : 0, ch = rows > 0 ? a.h / double(rows) : 0;
    svg.begin_crisp();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        svg.rect(a.x + double(c) * cw, a.y + double(r) * ch, cw + 0.3, ch + 0.3, colour_of(values[size_t(r * cols + c)], lo, hi));
    svg.end_group();
    if (rows == 0 || cols == 0) note(svg, a, "no data");
    if (mark_diagonal && rows > 0 && cols > 0) {  // white under dark dashes: visible on every colour
      double n = double(std::min(rows, cols));
      svg.line(a.x, a.y, a.x + n * cw, a.y + n * ch, "#ffffff", 2.4);
      svg.line(a.x, a.y, a.x + n * cw, a.y + n * ch, "#222222", 1.2, "5 4");
    }
    svg.rect(a.x, a.y, a.w, a.h, "", "#444444");
    if (!caption.empty()) svg.text(width / 2, height - 14, caption, {.size = kTickFont, .anchor = "middle", .colour = "#333333"});
  }

  // Column and row indices at the cell centres, and the axis labels.
  void draw_index_axes(Svg& svg, const Area& a, const Ticks& xt, const Ticks& yt) const {
    using namespace charts_detail;
    double cw = cols > 0 ? a.w / double(cols) : 0, ch = rows > 0 ? a.h / double(rows) : 0;
    for (size_t i = 0; i < xt.values.size(); ++i) {
      double x = a.x + (xt.values[i] + 0.5) * cw;
      svg.line(x, a.bottom(), x, a.bottom() + 5, "#444444");
      svg.text(x, a.bottom() + 18, xt.labels[i], {.size = kTickFont, .anchor = "middle", .colour = "#444444"});
    }
    for (size_t i = 0; i < yt.values.size(); ++i) {
      double y = a.y + (yt.values[i] + 0.5) * ch;
      svg.line(a.x - 5, y, a.x, y, "#444444");
      svg.text(a.x - 8, y, yt.labels[i], {.size = kTickFont, .anchor = "end", .colour = "#444444", .baseline = "middle"});
    }
    svg.text(a.x + a.w / 2, a.bottom() + 40, x_label, {.size = kLabelFont, .anchor = "middle"});
    svg.text(16, a.y + a.h / 2, y_label, {.size = kLabelFont, .anchor = "middle", .rotate = -90, .baseline = "hanging"});
  }

  // The colour bar: 64 bands from lo (bottom) to hi (top), ticks on its right; the value label and the
  // grey "not finite" key when a cell is NaN or infinite.
  void draw_colour_bar(Svg& svg, const Area& a, double bar_w, const Ticks& ct, double lo, double hi) const {
    using namespace charts_detail;
    double bx = a.right() + 20;
    constexpr int kBands = 64;
    svg.begin_crisp();
    for (int k = 0; k < kBands; ++k) {
      double v = lo + (hi - lo) * (double(k) + 0.5) / kBands;
      svg.rect(bx, a.y + a.h * (1 - double(k + 1) / kBands), bar_w, a.h / kBands + 0.3, colour_of(v, lo, hi));
    }
    svg.end_group();
    svg.rect(bx, a.y, bar_w, a.h, "", "#444444");
    for (size_t i = 0; i < ct.values.size(); ++i) {
      double v = ct.values[i];
      if (v < lo - 1e-12 * (hi - lo) || v > hi + 1e-12 * (hi - lo)) continue;
      double y = a.y + a.h * (1 - (v - lo) / (hi - lo));
      svg.line(bx + bar_w, y, bx + bar_w + 4, y, "#444444");
      svg.text(bx + bar_w + 7, y, ct.labels[i], {.size = kTickFont, .colour = "#444444", .baseline = "middle"});
    }
    if (!value_label.empty())
      svg.text(width - 12, a.y + a.h / 2, value_label, {.size = kLabelFont, .anchor = "middle", .rotate = -90});
    bool any_nan = std::any_of(values.begin(), values.end(), [](double v) { return !std::isfinite(v); });
    if (any_nan) {
      svg.rect(bx, a.bottom() + 12, 10, 10, "#bdbdbd", "#444444");
      svg.text(bx + 14, a.bottom() + 17, "not finite", {.size = kTickFont, .colour = "#444444", .baseline = "middle"});
    }
  }
};

// ---- histogram ------------------------------------------------------------------------------------

struct HistogramSeries {
  std::string name;
  std::vector<double> values;
};

// Bin counts of a histogram's series, for a CSV beside the picture (see Histogram::bin_counts).
struct Bins {
  double lo = 0, hi = 1;                   // the binned range; bin i is [lo + i w, lo + (i + 1) w)
  int count = 0;                           // number of bins
  std::vector<std::vector<double>> height;  // [series][bin]: counts, or shares with `normalize`
  std::vector<int64_t> left_out;           // [series]: values that were not finite or outside the range
  double edge(int i) const { return lo + (hi - lo) * double(i) / double(count); }
};

struct Histogram {
  std::string title, x_label, y_label;  // y_label "" means "count" (or "share of values" with normalize)
  std::vector<HistogramSeries> series;  // drawn on common bins, translucent, so overlaps show
  int bins = 30;
  std::optional<std::pair<double, double>> range;  // default: the finite minimum .. maximum
  bool normalize = false;  // heights as the share of each series' binned values (compares series of any size)
  double width = 760, height = 440;

  Bins bin_counts() const {
    if (bins < 1 || bins > 100000) throw std::invalid_argument("Histogram '" + title + "': bins must be in 1..100000, got " + std::to_string(bins));
    Bins b;
    b.count = bins;
    Extent e;
    for (const HistogramSeries& s : series)
      for (double v : s.values) e.add(v);
    if (range) b.lo = range->first, b.hi = range->second;
    else if (!e.empty()) b.lo = e.lo, b.hi = e.hi;
    if (!std::isfinite(b.lo) || !std::isfinite(b.hi)) b.lo = 0, b.hi = 1;
    if (b.lo > b.hi) std::swap(b.lo, b.hi);
    if (b.hi - b.lo <= std::max(std::abs(b.lo), std::abs(b.hi)) * 1e-12) {  // all values equal
      double pad = b.lo != 0 ? std::abs(b.lo) * 0.05 : 0.5;
      b.lo -= pad, b.hi += pad;
    }
    double w = (b.hi - b.lo) / double(bins);
    for (const HistogramSeries& s : series) {
      std::vector<double> h(size_t(bins), 0.0);
      int64_t left_out = 0, kept = 0;
      for (double v : s.values) {
        if (!std::isfinite(v) || v < b.lo || v > b.hi) {
          ++left_out;
          continue;
        }
        int i = std::min(bins - 1, int((v - b.lo) / w));  // v == hi goes into the last bin
        h[size_t(i)] += 1;
        ++kept;
      }
      if (normalize && kept > 0)
        for (double& x : h) x /= double(kept);
      b.height.push_back(std::move(h));
      b.left_out.push_back(left_out);
    }
    return b;
  }

  std::string svg() const {
    using namespace charts_detail;
    Bins b = bin_counts();
    double top = 0;
    std::vector<LegendEntry> legend;
    int64_t left_out = 0;
    for (size_t i = 0; i < series.size(); ++i) {
      for (double h : b.height[i]) top = std::max(top, h);
      left_out += b.left_out[i];
      if (!series[i].name.empty()) legend.push_back({series[i].name, series_colour(i), "", true});
    }
    Ticks xt = nice_ticks(b.lo, b.hi, 7);
    // The x axis shows exactly the binned range, with the nice ticks that fall inside it.
    Ticks inside = xt;
    inside.lo = b.lo, inside.hi = b.hi;
    inside.values.clear(), inside.labels.clear();
    for (size_t i = 0; i < xt.values.size(); ++i)
      if (xt.values[i] >= b.lo - 1e-9 * (b.hi - b.lo) && xt.values[i] <= b.hi + 1e-9 * (b.hi - b.lo))
        inside.values.push_back(xt.values[i]), inside.labels.push_back(xt.labels[i]);
    Ticks yt = nice_ticks(0, top > 0 ? top : 1, 6, !normalize);

    Svg svg(width, height);
    svg.rect(0, 0, width, height, "#ffffff");
    double legend_w = std::min(legend_width(legend), 0.45 * width);  // very long names run off the edge, the plot stays
    Area a;
    a.x = 44 + widest(yt);
    a.y = left_out > 0 ? 54 : 42;  // room for the note above the plot
    a.w = width - a.x - 20 - legend_w;
    a.h = height - a.y - 56;
    std::string y_text = !y_label.empty() ? y_label : normalize ? "share of values" : "count";
    draw_axes(svg, a, inside, yt, title, x_label, y_text);
    svg.begin_clip(a.x, a.y, a.w, a.h);
    for (size_t i = 0; i < series.size(); ++i) {
      // The outline of the bars as one polygon: up and down each bin edge, back along the axis.
      std::vector<std::pair<double, double>> outline;
      double base = axis_px(0, yt, a.y, a.h, true);
      outline.emplace_back(axis_px(b.lo, inside, a.x, a.w, false), base);
      for (int k = 0; k < b.count; ++k) {
        double y = axis_px(b.height[i][size_t(k)], yt, a.y, a.h, true);
        outline.emplace_back(axis_px(b.edge(k), inside, a.x, a.w, false), y);
        outline.emplace_back(axis_px(b.edge(k + 1), inside, a.x, a.w, false), y);
      }
      outline.emplace_back(axis_px(b.hi, inside, a.x, a.w, false), base);
      svg.polygon(outline, series_colour(i), 0.28, series_colour(i), 1.6);
    }
    svg.end_clip();
    if (top == 0) note(svg, a, "no finite data");
    draw_legend(svg, a.right() + 14, a.y, legend);
    if (left_out > 0)
      svg.text(a.right(), a.y - 6, std::to_string(left_out) + " values not finite or outside the range, left out",
               {.size = kTickFont, .anchor = "end", .colour = "#888888"});
    return svg.str();
  }
};

}  // namespace euler::plot
