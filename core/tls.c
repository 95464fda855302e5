/* core/tls.c */
#include "core.h"
