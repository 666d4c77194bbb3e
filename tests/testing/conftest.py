"""The kit's own tests run inner pytest sessions (`pytester`) to see what a plugin user sees.

`pytest_plugins` is allowed here only in a conftest that pytest loads at start-up;
it does so for the `test*` folders of each path it is given (`tests/testing` is
one), which is why this folder's name starts with "test".
"""

pytest_plugins = ["pytester"]
