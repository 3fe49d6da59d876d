// tests/svg_gallery.cpp: every kind of chart of include/euler/plot/charts.hpp, ordinary and awkward
// (NaN, no data, one point, constant data, tiny and huge numbers, many series, markup and broken UTF-8
// in the text), written as SVG into a directory. The ctest test render_svg_gallery then renders each
// one to PNG with rsvg-convert (scripts/render-svgs.sh), so a chart that some renderer rejects, or
// that comes out blank, fails the build.
//
//     euler_svg_gallery DIR
#include <euler/plot/charts.hpp>
#include <euler/plot/plane.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <string>

using namespace euler::plot;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: euler_svg_gallery DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  std::filesystem::create_directories(dir);
  int written = 0;
  auto save = [&](const std::string& name, const std::string& svg) {
    write_svg(dir + "/" + name, svg);
    ++written;
  };
  const double nan = std::nan("");

  {  // three curves, one with a gap, and a marker
    LinePlot p;
    p.title = "three curves, a gap and a marker";
    p.x_label = "x";
    p.y_label = "f(x)";
    Series a{"sin x", {}, {}}, b{"cos x (gap at 4..5)", {}, {}}, c{"exp(-x/4)", {}, {}};
    for (int i = 0; i <= 100; ++i) {
      double x = 0.1 * i;
      a.x.push_back(x), a.y.push_back(std::sin(x));
      b.x.push_back(x), b.y.push_back(x > 4 && x < 5 ? nan : std::cos(x));
      c.x.push_back(x), c.y.push_back(std::exp(-x / 4));
    }
    p.series = {a, b, c};
    p.markers.push_back({std::numbers::pi, "x = pi"});
    save("line_three_curves.svg", p.svg());
  }
  {  // one point, and a constant series
    LinePlot p;
    p.title = "one point and a constant";
    p.x_label = "epoch";
    p.y_label = "loss";
    p.integer_x = true;
    p.series = {{"one epoch", {1}, {2.5}}, {"constant", {1, 2, 3}, {2.5, 2.5, 2.5}}};
    save("line_one_point.svg", p.svg());
  }
  {  // nothing finite at all
    LinePlot p;
    p.title = "no finite data";
    p.x_label = "x";
    p.y_label = "y";
    p.series = {{"all NaN", {1, 2, 3}, {nan, nan, nan}}, {"infinite", {1, 2}, {INFINITY, -INFINITY}}};
    save("line_no_data.svg", p.svg());
  }
  {  // markup and broken UTF-8 in every text, Greek letters
    LinePlot p;
    p.title = "escaping: <tag> & \"quotes\" 'apostrophes' \xff\xfe broken UTF-8, \xce\xb4 \xce\xb8 \xce\xbb";
    p.x_label = "a < b && c > d";
    p.y_label = "]]> <!-- not a comment -->";
    p.series = {{"<series> & \"name\"", {0, 1, 2}, {0, 1, 4}}, {"control \x01\x02 chars\ttab", {0, 1, 2}, {1, 0, 1}}};
    p.markers.push_back({1, "<marker>"});
    save("line_escaping.svg", p.svg());
  }
  {  // tiny and huge numbers (scientific tick labels)
    LinePlot p;
    p.title = "tiny values (contrastive loss scale)";
    p.x_label = "epoch";
    p.y_label = "loss";
    p.integer_x = true;
    p.series = {{"lamb * cl", {1, 2, 3, 4}, {3.1e-6, 2.7e-6, 2.2e-6, 2.1e-6}}};
    save("line_tiny_values.svg", p.svg());
    p.title = "huge values";
    p.series = {{"sequences per second", {1, 2, 3, 4}, {1.2e7, 1.9e7, 2.4e7, 2.5e7}}};
    save("line_huge_values.svg", p.svg());
  }
  {  // logarithmic y: gradients over several decades, a zero and a negative value left out
    LinePlot p;
    p.title = "logarithmic y axis";
    p.x_label = "channel";
    p.y_label = "|gradient|";
    p.integer_x = true;
    p.log_y = true;
    Series a{"contrastive", {}, {}}, b{"cross-entropy (0 and -1 at t = 3, 4)", {}, {}};
    for (int t = 0; t < 8; ++t) {
      a.x.push_back(t), a.y.push_back(3e-3 * std::exp(-0.2 * t));
      b.x.push_back(t), b.y.push_back(t == 3 ? 0.0 : t == 4 ? -1.0 : 2e-7 * (1 + t));
    }
    p.series = {a, b};
    save("line_log_y.svg", p.svg());
  }
  {  // more series than colours: dashes take over
    LinePlot p;
    p.title = "twelve series";
    p.x_label = "x";
    p.y_label = "x + k";
    for (int k = 0; k < 12; ++k) p.series.push_back({"series " + std::to_string(k), {0, 1}, {double(k), double(k) + 1}});
    save("line_twelve_series.svg", p.svg());
  }
  {  // attention-like map: causal (upper triangle masked to 0), one NaN cell
    Heatmap h;
    h.title = "causal attention of one head";
    h.x_label = "key position";
    h.y_label = "query position";
    h.value_label = "attention weight";
    h.rows = h.cols = 20;
    for (int t = 0; t < 20; ++t)
      for (int s = 0; s < 20; ++s) h.values.push_back(s <= t ? 1.0 / double(t + 1) * (1 + 0.5 * std::sin(s)) : 0.0);
    h.values[5 * 20 + 2] = nan;
    h.mark_diagonal = true;
    h.caption = "what the picture shows, in one line under it: 42% of the weight on the item itself";
    save("heatmap_attention.svg", h.svg());
  }
  {  // signed values, diverging colours, not square
    Heatmap h;
    h.title = "signed values (diverging)";
    h.x_label = "channel";
    h.y_label = "position";
    h.value_label = "dL/d phase";
    h.rows = 12;
    h.cols = 32;
    for (int r = 0; r < 12; ++r)
      for (int c = 0; c < 32; ++c) h.values.push_back(1e-3 * std::sin(0.3 * c) * std::cos(0.5 * r));
    h.diverging = true;
    save("heatmap_diverging.svg", h.svg());
    h.values[3] = 0.5;  // one extreme cell: the robust range keeps the rest visible
    h.robust = true;
    h.title = "signed values, one extreme cell, robust colour range";
    save("heatmap_robust.svg", h.svg());
  }
  {  // no cells
    Heatmap h;
    h.title = "empty heatmap";
    save("heatmap_empty.svg", h.svg());
  }
  {  // two distributions on common bins, normalised, some values left out
    Histogram g;
    g.title = "two distributions of phases";
    g.x_label = "phase (radians)";
    g.range = {{-std::numbers::pi, std::numbers::pi}};
    g.normalize = true;
    g.bins = 36;
    HistogramSeries a{"uniform", {}}, b{"concentrated", {}};
    for (int i = 0; i < 4000; ++i) {
      a.values.push_back(-std::numbers::pi + 2 * std::numbers::pi * (i + 0.5) / 4000);
      b.values.push_back(0.8 * std::sin(0.7 * i) * std::sin(1.3 * i));
    }
    b.values.push_back(nan);
    b.values.push_back(10);  // outside the range
    g.series = {a, b};
    save("histogram_two.svg", g.svg());
  }
  {  // all values equal; no values
    Histogram g;
    g.title = "constant values";
    g.x_label = "value";
    g.series = {{"seven", std::vector<double>(50, 7.0)}};
    save("histogram_constant.svg", g.svg());
    g.title = "no values";
    g.series = {{"empty", {}}};
    save("histogram_empty.svg", g.svg());
  }
  {  // arrows in the plane: a rotation with its arcs; then zero, non-finite, huge and tiny tips, odd text
    PlanePlot p;
    p.title = "a rotation by 1.2 rad";
    p.arrows = {{"q", std::polar(0.8, 0.4), 0, true}, {"q e^{1.2i}", std::polar(0.8, 1.6), 0}, {"k", std::polar(1.3, -2.5), 1}};
    p.arcs = {{"1.2 rad", 0.4, 1.6, 0.4, 2}};
    p.mark_negative_real = true;
    p.caption = "the arrow keeps its length; its angle grows by 1.2 rad";
    save("plane_rotation.svg", p.svg());
    PlanePlot awkward;
    awkward.title = "zero, NaN, huge and tiny tips; <markup> & \xff";
    awkward.arrows = {{"zero", {0, 0}, 0}, {"NaN", {nan, 1}, 1}, {"huge", {1e9, -1e9}, 2}, {"tiny", {1e-12, 0}, 3},
                      {"a <label> with \"quotes\"", {0, 1}, 4}};
    awkward.arcs = {{"", 0, nan, 0.3, 0}, {"full turn", 0, 2 * std::numbers::pi, 0.5, 1}};
    save("plane_awkward.svg", awkward.svg());
    save("plane_empty.svg", PlanePlot{}.svg());
  }
  std::printf("euler_svg_gallery: wrote %d SVG files to %s\n", written, dir.c_str());
  return 0;
}
