/* Dense linear algebra from Debian's libopenblas-dev (CBLAS) and liblapacke-dev
 * (LAPACKE). Only FreshetEmbeddings' SpectralRefresh imports this module. */
#include <cblas.h>
#include <lapacke.h>
