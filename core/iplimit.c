/* core/iplimit.c */
#include "core.h"
