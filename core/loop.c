/* core/loop.c */
#include "core.h"
