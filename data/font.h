// data/font.h: a small bitmap font for the labels of plots (titles, axis labels, tick values,
// legends). Each glyph is 5 pixels wide and 8 tall: rows 0-6 above the baseline, row 7 for
// descenders; characters advance by 6 pixels. It has digits, lowercase letters (capitals are
// drawn as lowercase) and " .-+_/:(),=?"; any other character is drawn as '?'.
#pragma once

enum { FONT_WIDTH = 5, FONT_HEIGHT = 8, FONT_ADVANCE = 6 };

// Whether the pixel (col, row) of c's glyph is set; col < FONT_WIDTH, row < FONT_HEIGHT.
int font_pixel(char c, int col, int row);
// Width in pixels of s drawn at `scale` (no trailing gap).
int font_text_width(const char *s, int scale);
