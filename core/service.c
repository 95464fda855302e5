/* core/service.c */
#include "core.h"
