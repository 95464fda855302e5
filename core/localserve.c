/* core/localserve.c */
#include "core.h"
