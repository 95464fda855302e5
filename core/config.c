/* core/config.c */
#include "core.h"
