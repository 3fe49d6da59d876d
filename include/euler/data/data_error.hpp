// euler/data/data_error.hpp: the error every data reader throws.
//
// Messages name the file, the line (when there is one) and the problem, e.g.
//     "ratings.dat:17: field 2 'abc' is not an integer id"
#pragma once

#include <stdexcept>

namespace euler {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace euler
