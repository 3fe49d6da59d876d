// euler/plot/csv.hpp: a table written as CSV (RFC 4180), the numbers behind every plot.
//
// Each SVG that euler writes has a CSV beside it, so the data can go into a spreadsheet, pandas or R.
// Fields that hold a comma, quote or line break are quoted (quotes doubled); numbers are written with
// 10 significant digits; NaN and infinities as "nan", "inf" and "-inf" (what pandas and R read back).
//
//     euler::plot::Csv csv({"epoch", "loss", "model"});
//     csv.row({1, 4.25, "euler"});
//     csv.row({2, std::nan(""), "rope, no psi"});   // -> 2,nan,"rope, no psi"
//     euler::write_file_atomically("run/curves.csv", csv.str());
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace euler::plot {

// One field as CSV text: quoted when it holds a comma, a quote, CR or LF.
inline std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

inline std::string csv_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.10g", v);
  return buffer;
}

// A cell: a number or a text.
struct CsvCell {
  std::string text;
  CsvCell(double v) : text(csv_number(v)) {}                    // NOLINT: implicit, for row({...})
  CsvCell(int v) : text(std::to_string(v)) {}                   // NOLINT
  CsvCell(int64_t v) : text(std::to_string(v)) {}               // NOLINT
  CsvCell(const char* s) : text(csv_field(s)) {}                // NOLINT
  CsvCell(const std::string& s) : text(csv_field(s)) {}         // NOLINT
};

class Csv {
 public:
  explicit Csv(const std::vector<std::string>& columns) : columns_(columns.size()) {
    if (columns.empty()) throw std::invalid_argument("Csv: a table needs at least one column");
    for (size_t i = 0; i < columns.size(); ++i) text_ += (i ? "," : "") + csv_field(columns[i]);
    text_ += "\n";
  }

  // One row; it must have one cell per column.
  void row(std::initializer_list<CsvCell> cells) { row(std::vector<CsvCell>(cells)); }
  void row(const std::vector<CsvCell>& cells) {
    if (cells.size() != columns_)
      throw std::invalid_argument("Csv: a row of " + std::to_string(cells.size()) + " cells for " + std::to_string(columns_) +
                                  " columns");
    for (size_t i = 0; i < cells.size(); ++i) text_ += (i ? "," : "") + cells[i].text;
    text_ += "\n";
    ++rows_;
  }

  size_t rows() const { return rows_; }
  const std::string& str() const { return text_; }

 private:
  size_t columns_;
  size_t rows_ = 0;
  std::string text_;
};

}  // namespace euler::plot
