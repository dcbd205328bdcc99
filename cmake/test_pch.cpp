// The source of ioas_test_pch_exe
// (cmake/IoasTestBuild.cmake), the target whose precompiled header the test
// programs and libraries reuse.
int main() { return 0; }
