/* core/module.c */
#include "core.h"
